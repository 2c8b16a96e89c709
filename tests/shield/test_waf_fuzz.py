"""Short fuzzing runs of the SecLang parser and the request parsers, so crashes show in CI.
The long runs are in docs/shield.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("harness", "extra"),
    [("fuzz_seclang.py", ["-dict=fuzz/seclang.dict"]), ("fuzz_request.py", [])],
)
def test_short_fuzz_run_finds_no_crash(harness: str, extra: list[str], tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    seeds = REPO / "fuzz" / "seeds" / harness.removeprefix("fuzz_").removesuffix(".py")
    if seeds.is_dir():  # a copy: libFuzzer adds what it finds to the first folder
        shutil.copytree(seeds, corpus)
    else:
        corpus.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env.pop("MILLIWATT_CRS_DIR", None)  # the baseline rules keep the short run short
    out = subprocess.run(
        [sys.executable, f"fuzz/{harness}", *extra, "-runs=2000", "-seed=1", str(corpus)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Done 2000 runs" in out.stderr
