"""The compiled build of the rule engine: used when it matches the sources, refused when stale,
and giving exactly the verdicts of the Python sources."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.shield.waf.test_compiled import regression_requests

from milliwatt.shield.waf import WAF, HttpResponse, WafSettings, native, transaction

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_the_installed_engine_runs_compiled() -> None:
    assert native.state() == "compiled", (
        f"the WAF runs {native.state()}; scripts/install.sh builds it (scripts/compile_waf.py)"
    )
    assert transaction.__file__ is not None and transaction.__file__.endswith(SUFFIX)


def fake_build(folder: Path, digest: str) -> None:
    folder.mkdir()
    (folder / f"native__mypyc{SUFFIX}").write_bytes(b"")
    (folder / native.DIGEST_FILE).write_text(digest + "\n")


def test_a_build_is_used_only_while_it_matches_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "_state", native.state())  # restored after the test
    monkeypatch.delenv("MILLIWATT_WAF_PURE", raising=False)
    monkeypatch.setattr(native, "COMPILED_DIR", tmp_path / "none")
    assert native._choose().startswith("python (no compiled build")

    monkeypatch.setattr(native, "COMPILED_DIR", tmp_path / "current")
    fake_build(tmp_path / "current", native.sources_digest())
    assert native._choose() == "compiled"
    path: list[str] = []
    assert native.use_compiled(path) == "compiled" and path == [str(tmp_path / "current")]

    # a module edited after the build: the build is not put on the path
    monkeypatch.setattr(native, "COMPILED_DIR", tmp_path / "stale")
    fake_build(tmp_path / "stale", "0" * 64)
    path = []
    assert "stale" in native.use_compiled(path) and path == []

    monkeypatch.setattr(native, "COMPILED_DIR", tmp_path / "current")
    monkeypatch.setenv("MILLIWATT_WAF_PURE", "1")
    assert native._choose() == "python (MILLIWATT_WAF_PURE=1)"


def collect_verdicts(rules: Path, tests: Path) -> list[list[object]]:
    """Per regression payload (a seventh of them): the status it got, and the rules matched."""
    waf = WAF.load(rules, WafSettings(mode="blocking", paranoia=1))
    response = HttpResponse(200, [("Content-Type", "text/html")], b"<html>ok</html>")
    out: list[list[object]] = []
    for request in regression_requests(tests, 7):
        tx = waf.transaction(request_id="fixed")
        verdict = tx.process_request(request) or tx.process_response(response)
        tx.finish()
        out.append([verdict.status if verdict else None, [m.id for m in tx.matched_rules]])
    return out


VERDICTS = """
import json, sys
from pathlib import Path
from milliwatt.shield.waf import native
from tests.shield.waf.test_native import collect_verdicts

verdicts = collect_verdicts(Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps({"state": native.state(), "verdicts": verdicts}))
"""


def verdicts(rules: Path, tests: Path, *, pure: bool) -> dict[str, object]:
    env = {**os.environ, "MILLIWATT_WAF_PURE": "1" if pure else "0"}
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", VERDICTS, str(rules), str(tests)],
        env={**env, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])},
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_compiled_and_python_builds_give_the_same_verdicts(
    crs_rules: Path, crs_tests: Path
) -> None:
    python = verdicts(crs_rules, crs_tests, pure=True)
    assert str(python["state"]).startswith("python")
    compiled = collect_verdicts(crs_rules, crs_tests)  # this process: the compiled build
    assert len(compiled) > 200
    assert sum(v[0] is not None for v in compiled) > 100  # attacks are in the sample
    assert compiled == python["verdicts"]
