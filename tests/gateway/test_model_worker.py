"""`milliwatt serve` when the model's worker crashes or a client walks away mid-answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import httpx
import pytest
from tests.conftest import Server

pytestmark = pytest.mark.slow

LONG = """
[models.smollm2-135m]
max_tokens = 1500
ignore_eos = true
parallel = {parallel}

[[agents]]
name = "milliwatt"
tools = ["math.*"]
max_tokens = 1500
"""
STORY = {"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}


def _worker(server: Server) -> dict[str, object]:
    return httpx.get(f"{server.url}/healthz").json()["models"]["smollm2-135m"]


def _open_stream(server: Server) -> socket.socket:
    """A raw streaming request whose first chunks of text have been read."""
    body = json.dumps({"model": "milliwatt", "stream": True, "messages": [STORY]}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    received = b""
    while received.count(b'"content"') < 5:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return sock


def _ask(server: Server, content: str, **extra: object) -> httpx.Response:
    body = {"model": "milliwatt", "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120)


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_killed_model_worker_does_not_take_the_server_down(make_server, sig) -> None:  # type: ignore[no-untyped-def]
    server = make_server(LONG.format(parallel=2)).start()
    stream = _open_stream(server)
    os.kill(int(_worker(server)["pid"]), sig)
    # the stream in progress ends with an error in band, as OpenAI's do
    rest = b""
    while not rest.endswith(b"data: [DONE]\n\n") and not rest.endswith(b"0\r\n\r\n"):
        chunk = stream.recv(65536)
        if not chunk:
            break
        rest += chunk
    stream.close()
    assert b'"error"' in rest and sig.name.encode() in rest
    # while the worker restarts: the model route says when to come back, tools answer
    busy = _ask(server, "Say hello.")
    if busy.status_code == 503:
        assert int(busy.headers["retry-after"]) >= 1
        assert busy.json()["error"]["code"] == "model_unavailable"
    assert _ask(server, "what is 234 * 567").json()["milliwatt"]["route"] == "tool"
    deadline = time.monotonic() + 60
    while _worker(server)["state"] != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    status = _worker(server)
    assert status["restarts"] == 1 and sig.name in str(status["last_exit"])
    answer = _ask(server, "Say hello.", max_tokens=8)
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 8
    assert server.proc is not None and server.proc.poll() is None


def test_a_dropped_stream_frees_its_slot_for_the_next_request(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(LONG.format(parallel=1)).start()
    _open_stream(server).close()  # 1500 tokens asked for, four read
    started = time.monotonic()
    answer = _ask(server, "Say hello.", max_tokens=8)
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - started < 10  # not behind the abandoned generation
    assert _worker(server)["running"] == 0


def test_a_client_that_hangs_up_stops_its_plain_generation(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(LONG.format(parallel=1)).start()
    body = json.dumps({"model": "milliwatt", "messages": [STORY]}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    deadline = time.monotonic() + 30
    while _worker(server)["running"] == 0:  # the generation has started
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sock.close()
    deadline = time.monotonic() + 5
    while _worker(server)["running"] != 0:
        assert time.monotonic() < deadline, "the generation ran on for nobody"
        time.sleep(0.05)


def test_max_tokens_of_the_request_caps_the_reply(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(LONG.format(parallel=2)).start()
    for field in ("max_tokens", "max_completion_tokens"):
        reply = _ask(server, STORY["content"], **{field: 7})
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["completion_tokens"] == 7
