"""The proxy's HTTP on real sockets: a raw HTTP/1.1 upstream on loopback that answers with
every framing (length, chunked, close-delimited, none), the proxy in front of it."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.conftest import trickled_headers_answer
from waf_loopback import proxy_thread

from milliwatt.shield import proxy as proxy_module
from milliwatt.shield.http import load_waf
from milliwatt.shield.proxy import ProxyServer, ProxySettings

RULES = r"""
SecRequestBodyLimit 1000
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain
SecRule ARGS|REQUEST_BODY "@contains attack" "id:1001,phase:2,deny,status:403,log"
SecRule RESPONSE_BODY "@contains card-4111" "id:1002,phase:4,deny,status:403,log"
"""
CHUNKED_BODY = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


class RawUpstream(socketserver.ThreadingTCPServer):
    """Records each request (with the number of the connection it came on) and answers by
    path: /chunked, /close (close-delimited), /empty (204), /slow (after 2 s), else JSON."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RawHandler)
        self.seen: list[dict] = []
        self.connections = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RawHandler(socketserver.StreamRequestHandler):
    server: RawUpstream

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
            conn = self.server.connections
        while True:
            line = self.rfile.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: list[tuple[str, str]] = []
            while (h := self.rfile.readline()) not in (b"\r\n", b""):
                name, value = h.decode("latin-1").split(":", 1)
                headers.append((name, value.strip()))
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            body = self.rfile.read(length)
            self.server.seen.append({"conn": conn, "method": method, "target": target,
                                     "headers": headers, "body": body})  # fmt: skip
            if not self._answer(method, target, body):
                return

    def _answer(self, method: str, target: str, body: bytes) -> bool:
        out = self.wfile
        if target == "/chunked":
            out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY)  # fmt: skip
        elif target == "/close":
            out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Connection: close\r\n\r\nread me to the end")  # fmt: skip
            return False
        elif target in ("/leak", "/text"):
            text = b"your card-4111 is here" if target == "/leak" else b"nothing to see"
            out.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                      % (len(text), text))  # fmt: skip
        elif target == "/empty":
            out.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif target.startswith("/pause"):
            time.sleep(0.1)
            out.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        elif target == "/slow":
            time.sleep(2)
            out.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        else:
            answer = json.dumps({"target": target, "body": body.decode("latin-1")}).encode()
            out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Hop: 1\r\n"
                      b"Connection: keep-alive, X-Hop\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(answer))  # fmt: skip
            if method != "HEAD":
                out.write(answer)
        out.flush()
        return True


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    server = RawUpstream()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def proxy(upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    rules = tmp_path_factory.mktemp("rules")
    (rules / "REQUEST-901-TEST.conf").write_text(RULES)
    waf = load_waf(crs_dir=rules)
    settings = ProxySettings(upstream=upstream.url, timeout_s=0.5)
    with proxy_thread(waf, settings) as server:
        yield server


def exchange(port: int, raw: bytes, wait: float = 0.5) -> bytes:
    """Sends raw bytes; returns all that came back until the proxy closed or went quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(raw)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    return data


def test_a_chunked_answer_passes_through_as_sent(proxy: ProxyServer) -> None:
    raw = exchange(proxy.port, b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert body == CHUNKED_BODY
    assert httpx.get(f"http://127.0.0.1:{proxy.port}/chunked").content == b"hello world"


def test_an_http10_client_gets_chunked_answers_decoded(proxy: ProxyServer) -> None:
    raw = exchange(proxy.port, b"GET /chunked HTTP/1.0\r\n\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding" not in head.lower()
    assert body == b"hello world"  # delimited by the close


def test_a_close_delimited_answer_reaches_the_client_whole(proxy: ProxyServer) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}") as client:
        assert client.get("/close").content == b"read me to the end"
        assert client.get("/after").status_code == 200  # the client connection lives on


def test_answers_without_body_keep_the_connection_usable(proxy: ProxyServer) -> None:
    raw = exchange(
        proxy.port,
        b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert raw.count(b"HTTP/1.1 200") == 2 and raw.count(b"HTTP/1.1 204") == 1
    assert raw.index(b"204") < raw.index(b'"target": "/last"')
    assert b'"/h"' not in raw  # HEAD: headers only


def test_request_bodies_are_forwarded_with_their_length(
    proxy: ProxyServer, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    url = f"http://127.0.0.1:{proxy.port}/form"
    assert httpx.post(url, content=b"a=1&b=2").json()["body"] == "a=1&b=2"
    chunked = httpx.post(url, content=iter([b"x=", b"1"]))  # Transfer-Encoding: chunked
    assert chunked.json()["body"] == "x=1"
    lengths = [
        dict((k.lower(), v) for k, v in s["headers"])["content-length"] for s in upstream.seen
    ]
    assert lengths == ["7", "3"]
    assert all("transfer-encoding" not in dict(s["headers"]) for s in upstream.seen)


def test_expect_100_continue_is_answered_before_the_body(proxy: ProxyServer) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\n")  # fmt: skip
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"a=1")
        answer = b""
        while b"}" not in answer:
            answer += s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200") and b'"body": "a=1"' in answer


def test_upstream_connections_are_reused(proxy: ProxyServer, upstream: RawUpstream) -> None:
    before = upstream.connections
    for i in range(5):  # each on a new client connection
        assert httpx.get(f"http://127.0.0.1:{proxy.port}/again/{i}").status_code == 200
    assert upstream.connections - before <= 1


def test_clients_wait_their_turn_for_the_pooled_connections(
    upstream: RawUpstream, tmp_path: Path
) -> None:
    (tmp_path / "REQUEST-901-TEST.conf").write_text(RULES)
    settings = ProxySettings(upstream=upstream.url, max_connections=2)
    with proxy_thread(load_waf(crs_dir=tmp_path), settings) as proxy:
        before = upstream.connections
        url = f"http://127.0.0.1:{proxy.port}/pause"
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda i: httpx.get(f"{url}/{i}").status_code, range(10)))
        assert statuses == [200] * 10
        assert upstream.connections - before <= 2


def test_pipelined_requests_are_answered_in_order(proxy: ProxyServer) -> None:
    raw = exchange(
        proxy.port, b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(6))
    )
    positions = [raw.index(b'"target": "/p%d"' % i) for i in range(6)]
    assert positions == sorted(positions)


def test_the_target_goes_byte_for_byte_and_hop_headers_stay(
    proxy: ProxyServer, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    raw = exchange(proxy.port, b"GET /a%2Fb/%7e/./c?x=%41&y HTTP/1.1\r\nHost: shop\r\n"
                   b"Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                   b"X-Forwarded-For: 10.1.2.3\r\nX-Kept: yes\r\n\r\n")  # fmt: skip
    assert raw.startswith(b"HTTP/1.1 200")
    assert b"x-hop" not in raw.lower()  # named in the upstream's Connection header
    (seen,) = upstream.seen
    assert seen["target"] == "/a%2Fb/%7e/./c?x=%41&y"
    names = {k.lower(): v for k, v in seen["headers"]}
    assert names["host"] == "shop" and names["x-kept"] == "yes"
    assert names["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert not {"connection", "x-secret", "keep-alive"} & names.keys()


def test_malformed_requests_get_400_after_earlier_answers(
    proxy: ProxyServer, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    raw = exchange(
        proxy.port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nBad header\r\n\r\n"
    )
    assert raw.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 400" in raw
    assert [s["target"] for s in upstream.seen] == ["/ok"]


def test_headers_over_the_limit_get_431_however_they_arrive(
    proxy: ProxyServer, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    big = b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    assert exchange(proxy.port, big).startswith(b"HTTP/1.1 431")  # one read, headers whole
    start = b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: "
    assert trickled_headers_answer(proxy.port, start).startswith(b"HTTP/1.1 431")
    assert upstream.seen == []
    body = b"x" * 60_000  # a large body in the same read as its headers is not a header:
    post = b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert exchange(proxy.port, post + body, wait=2).startswith(b"HTTP/1.1 413")  # the body limit


def test_headers_sent_a_byte_at_a_time_are_cut_off(
    proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy_module, "HEADER_TIMEOUT_S", 1.0)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        with contextlib.suppress(OSError):  # the proxy closes mid-send
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                sock.send(bytes([byte]))
                time.sleep(0.1)  # never idle for the keep-alive time (5 s)
                if select.select([sock], [], [], 0)[0]:
                    break
        assert sock.recv(100) == b""  # closed, nothing answered
    assert time.monotonic() - started < 5


def test_attacks_get_403_and_never_reach_the_upstream(
    proxy: ProxyServer, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    r = httpx.post(f"http://127.0.0.1:{proxy.port}/form", content=b"comment=attack")
    assert r.status_code == 403 and r.json()["request_id"] == r.headers["x-request-id"]
    assert upstream.seen == []


def test_a_response_the_rules_deny_is_replaced(proxy: ProxyServer) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}") as client:
        leak, text = client.get("/leak"), client.get("/text")
    assert leak.status_code == 403 and b"card-4111" not in leak.content
    assert text.status_code == 200 and text.content == b"nothing to see"
    assert text.headers["content-length"] == "14"  # inspected whole, so its length is known


def test_detection_mode_lets_attacks_through(upstream: RawUpstream, tmp_path: Path) -> None:
    (tmp_path / "REQUEST-901-TEST.conf").write_text(RULES)
    settings = ProxySettings(upstream=upstream.url)
    with proxy_thread(load_waf(crs_dir=tmp_path, mode="detection"), settings) as proxy:
        r = httpx.post(f"http://127.0.0.1:{proxy.port}/form", content=b"comment=attack")
    assert r.status_code == 200 and r.json()["body"] == "comment=attack"


def test_bodies_over_the_limit_get_413_unforwarded(
    proxy: ProxyServer, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    declared = exchange(proxy.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nab")
    streamed = exchange(proxy.port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"\r\n7d0\r\n" + b"a" * 2000 + b"\r\n0\r\n\r\n")  # fmt: skip
    assert declared.startswith(b"HTTP/1.1 413") and streamed.startswith(b"HTTP/1.1 413")
    assert upstream.seen == []


def test_a_client_that_leaves_mid_request_is_forgotten(
    proxy: ProxyServer, upstream: RawUpstream
) -> None:
    upstream.seen.clear()
    with socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.sendall(b"POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part")
    time.sleep(0.2)
    assert upstream.seen == []
    assert httpx.get(f"http://127.0.0.1:{proxy.port}/still").status_code == 200


def test_a_slow_upstream_gets_504(proxy: ProxyServer) -> None:
    r = httpx.get(f"http://127.0.0.1:{proxy.port}/slow", timeout=10)
    assert r.status_code == 504 and r.json() == {"error": "upstream timed out"}


def test_several_workers_share_the_port(upstream: RawUpstream, tmp_path: Path) -> None:
    import subprocess
    import sys

    from waf_loopback import free_port

    (tmp_path / "REQUEST-901-TEST.conf").write_text(RULES)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from milliwatt.cli import app; app()", "shield", "proxy",
         "--upstream", upstream.url, "--listen", f"127.0.0.1:{port}", "--rules", str(tmp_path),
         "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/w")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert r.status_code == 200
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(workers) == 2
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
