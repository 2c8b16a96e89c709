"""`milliwatt egress check` as a user runs it: a real subprocess, exit codes, the SSRF corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from loopback_servers import http_server

REPO = Path(__file__).resolve().parents[3]
CORPUS = (
    REPO / ".." / "shared" / "corpora" / "ssrf" / "payloadsallthethings" / "ssrf_payloads.jsonl"
)


def egress(
    *args: str, stdin: str | None = None, whole_cli: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `milliwatt egress ARGS`; by default through `python -m milliwatt.shield.egress`,
    the same Typer app without importing every other command family."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    if whole_cli:
        command = [sys.executable, "-c", "from milliwatt.cli import app; app()", "egress"]
    else:
        command = [sys.executable, "-m", "milliwatt.shield.egress"]
    return subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_every_blocked_payload_of_the_ssrf_corpus_is_blocked_with_a_reason() -> None:
    if not CORPUS.is_file():
        pytest.skip(f"SSRF corpus not found at {CORPUS}")
    cases = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    done = egress("check", "--offline", "--file", str(CORPUS))
    assert done.returncode == 0, done.stderr
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [v["input"] for v in verdicts] == [c["input"] for c in cases]
    must_block = [(c, v) for c, v in zip(cases, verdicts, strict=True) if c["expect"] == "block"]
    assert len(must_block) >= 90
    leaks = [c["input"] for c, v in must_block if v["verdict"] != "block"]
    assert leaks == []
    assert all(v["reason"] for _, v in must_block)
    assert f"{len(must_block)}/{len(must_block)} as expected" in done.stderr


def test_enclosed_alphanumerics_normalise_to_the_name_that_is_resolved() -> None:
    done = egress("check", "--resolve", "example.com=93.184.215.14", "http://ⓔⓧⓐⓜⓟⓛⓔ.ⓒⓞⓜ/")
    assert (done.returncode, done.stdout.strip()) == (
        0,
        "allow http://example.com/ -> 93.184.215.14",
    )


def test_exit_codes_and_reasons() -> None:
    blocked = egress("check", "http://0x7f.1/", whole_cli=True)
    assert blocked.returncode == 3
    assert (
        blocked.stdout.strip() == "block address 127.0.0.1 is loopback (127.0.0.0/8), from '0x7f.1'"
    )
    allowed = egress(
        "check",
        "--json",
        "--resolve",
        "www.example.org=93.184.215.14,2606:2800::1",
        "https://www.example.org/a",
    )
    assert allowed.returncode == 0
    assert json.loads(allowed.stdout) == {
        "input": "https://www.example.org/a",
        "verdict": "allow",
        "reason": "www.example.org is public and allowed by the policy",
        "url": "https://www.example.org/a",
        "addresses": ["93.184.215.14", "2606:2800::1"],
    }


def test_a_name_resolving_inside_is_blocked_and_offline_refuses_unknown_names() -> None:
    inside = egress("check", "--resolve", "evil.example=192.168.1.5", "http://evil.example/")
    assert inside.returncode == 3
    assert "resolves to a refused address: 192.168.1.5 is private" in inside.stdout
    unknown = egress("check", "--offline", "http://unknown.example.org/")
    assert unknown.returncode == 3
    assert "not resolved offline" in unknown.stdout


def test_allow_network_opens_a_range_deliberately_but_never_metadata() -> None:
    opened = egress(
        "check", "--allow-network", "127.0.0.0/8", "--any-port", "http://127.0.0.1:8999/"
    )
    assert opened.returncode == 0
    metadata = egress("check", "--allow-network", "169.254.0.0/16", "http://169.254.169.254/")
    assert metadata.returncode == 3
    assert "never allowed" in metadata.stdout


def test_file_from_stdin_with_resolves_to() -> None:
    lines = [
        {"input": "http://rebind.example.com/", "resolves_to": ["93.184.215.14", "10.0.0.7"]},
        {"input": "http://ok.example.com/", "resolves_to": "93.184.215.14"},
    ]
    done = egress("check", "--offline", "--file", "-", stdin="\n".join(map(json.dumps, lines)))
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [v["verdict"] for v in verdicts] == ["block", "allow"]
    assert "10.0.0.7 is private" in verdicts[0]["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check",), "give either a URL or --file"),
        (("check", "--resolve", "example.com", "http://example.com/"), "must look like HOST=IP"),
        (("check", "--resolve", "example.com=not-an-ip", "http://x.com/"), "not an IP address"),
        (("check", "--allow-network", "10.0.0.1/8", "http://x.com/"), "not a CIDR network"),
        (("check", "--file", "/nonexistent/cases.jsonl"), "cannot read"),
    ],
)
def test_bad_input_is_named(args: tuple[str, ...], message: str) -> None:
    done = egress(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_bad_file_line_is_named() -> None:
    done = egress("check", "--file", "-", stdin='{"input": "http://a.com/"}\nnot json\n')
    assert done.returncode == 2
    assert "line 2 is not JSON" in done.stderr


def test_fetch_prints_the_body_and_refuses_loopback_unless_allowed() -> None:
    with http_server() as (port, seen):
        url = f"http://127.0.0.1:{port}/host"
        fetched = egress("fetch", "--allow-network", "127.0.0.0/8", "--any-port", url)
        refused = egress("fetch", "--any-port", url)
    assert (fetched.returncode, fetched.stdout) == (0, f"127.0.0.1:{port}")
    assert f"200 {url} from 127.0.0.1" in fetched.stderr
    assert refused.returncode == 3
    assert "127.0.0.1 is loopback" in refused.stderr
    assert len(seen.requests) == 1
