"""`milliwatt shield proxy` as a real process in front of a real HTTP server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from waf_loopback import BIG, Upstream, free_port

from milliwatt.shield.auditlog import read_records

RULES = r"""
SecRule ARGS|REQUEST_BODY "@contains attack" \
    "id:1001,phase:2,deny,status:403,log,msg:'attack',logdata:'%{MATCHED_VAR}'"
"""


def _start_proxy(upstream: str, rules: Path, audit: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from milliwatt.cli import app; app()", "shield", "proxy",
         "--upstream", upstream, "--listen", f"127.0.0.1:{port}", "--rules", str(rules),
         "--audit-log", str(audit)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"proxy exited: {proc.stdout.read().decode() if proc.stdout else ''}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("proxy did not start listening")


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream.running() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("proxy")
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "REQUEST-901-TEST.conf").write_text(RULES)
    audit = tmp / "audit.jsonl"
    proc, port = _start_proxy(f"http://127.0.0.1:{upstream.server_port}", rules, audit)
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "audit": audit, "rules": rules}
    proc.terminate()
    proc.wait(timeout=10)


def test_benign_requests_reach_the_upstream_unchanged(upstream: Upstream, proxy: dict) -> None:
    upstream.seen.clear()
    with httpx.Client(base_url=proxy["url"]) as client:
        got = client.get("/a%2Fb/c?q=hello%20world&x=1")
        posted = client.post("/form", content=b"name=milli&watt=1")
    assert got.status_code == 200 and got.headers["x-upstream"] == "yes"
    assert got.json()["path"] == "/a%2Fb/c?q=hello%20world&x=1"
    assert posted.json() == {"path": "/form", "body": "name=milli&watt=1"}
    assert [s["path"] for s in upstream.seen] == ["/a%2Fb/c?q=hello%20world&x=1", "/form"]
    assert upstream.seen[0]["headers"]["X-Forwarded-For"] == "127.0.0.1"


def test_attack_is_blocked_and_never_reaches_the_upstream(upstream: Upstream, proxy: dict) -> None:
    upstream.seen.clear()
    with httpx.Client(base_url=proxy["url"]) as client:
        in_query = client.get("/search", params={"q": "an attack"})
        in_body = client.post("/form", content=b"comment=attack")
    assert (in_query.status_code, in_body.status_code) == (403, 403)
    assert upstream.seen == []
    ids = {in_query.json()["request_id"], in_body.json()["request_id"]}
    deadline = time.monotonic() + 10  # the record is appended once the answer has been sent
    while True:
        logged = [r for r in read_records(proxy["audit"]) if r["request_id"] in ids]
        if len(logged) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(logged) == 2 and all(r["rule_id"] == 1001 for r in logged)


def test_large_responses_stream_through(proxy: dict) -> None:
    with httpx.Client(base_url=proxy["url"]) as client:
        r = client.get("/big")
    assert r.status_code == 200
    assert r.content == BIG


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nNo colon in this header\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
    ],
)
def test_malformed_http_gets_400(upstream: Upstream, proxy: dict, raw: bytes) -> None:
    upstream.seen.clear()
    with socket.create_connection(("127.0.0.1", proxy["port"]), timeout=10) as s:
        s.sendall(raw)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert upstream.seen == []
    with httpx.Client(base_url=proxy["url"]) as client:  # and the proxy still serves
        assert client.get("/still-up").status_code == 200


def test_upstream_down_gets_502(proxy: dict, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proc, port = _start_proxy(dead, proxy["rules"], tmp_path / "audit.jsonl")
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/anything")
        assert r.status_code == 502
        assert "upstream unavailable" in r.json()["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "ftp://x", "--listen", "127.0.0.1:1"], "upstream must be an http"),
        (["--upstream", "http://127.0.0.1:9", "--listen", "nowhere"], "HOST:PORT"),
        (["--upstream", "http://127.0.0.1:9", "--mode", "loud"], "blocking"),
        (["--upstream", "http://127.0.0.1:9", "--paranoia", "5"], "paranoia"),
        (["--upstream", "http://127.0.0.1:9", "--rules", "/nonexistent/rules"], "not a folder"),
        (
            ["--upstream", "http://127.0.0.1:9", "--rules", str(Path(__file__).parent)],
            "no CRS rule",
        ),
    ],
)
def test_bad_options_are_named(args: list[str], message: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from milliwatt.cli import app; app()", "shield", "proxy", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert message in out.stdout + out.stderr


def test_rules_command_reports_what_loads(proxy: dict, tmp_path: Path) -> None:
    run = [sys.executable, "-c", "from milliwatt.cli import app; app()", "shield", "rules"]
    ok = subprocess.run([*run, str(proxy["rules"])], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0
    assert str(proxy["rules"]) in ok.stdout and " rules from " in ok.stdout
    (tmp_path / "REQUEST-901-BAD.conf").write_text('SecRule ARGS "@nosuchop x" "id:1,deny"\n')
    bad = subprocess.run([*run, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "REQUEST-901-BAD.conf:1" in bad.stderr
