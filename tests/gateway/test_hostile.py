"""`milliwatt serve` probed as an outside attacker would, from loopback: the same bytes as the
findings of the hostile review, and what the server does with them now."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, trickled_headers_answer

from milliwatt.doctor import _data_permissions
from milliwatt.memory.sessions import TurnCost
from milliwatt.memory.sqlite import SqliteSessionStore
from milliwatt.models.base import Message
from milliwatt.tools.graph import Edge, store_graph
from milliwatt.tools.registry import ToolContext

# tools only: a model request goes to a dead port and fails fast (503), no model is loaded
TOOLS_ONLY = """
[models.remote]
backend = "openai"
base_url = "http://127.0.0.1:9/v1"
timeout_seconds = 2

[[agents]]
name = "milliwatt"
tools = ["math.*", "graph.*"]
models = ["remote"]

[server]
request_timeout_seconds = 1
"""
CHAT = "/v1/chat/completions"


@pytest.fixture
def server(make_server) -> Server:  # type: ignore[no-untyped-def]
    return make_server(TOOLS_ONLY).start()


def chat_body(content: str = "what is 2+3", user: str | None = None, **extra: object) -> bytes:
    body: dict[str, object] = {
        "model": "milliwatt",
        "messages": [{"role": "user", "content": content}],
    }
    if user is not None:
        body["user"] = user
    return json.dumps(body | extra).encode()


def post(server: Server, body: bytes, **headers: str) -> httpx.Response:
    headers = {"content-type": "application/json", **headers}
    return httpx.post(server.url + CHAT, content=body, headers=headers, timeout=30)


def raw_exchange(server: Server, data: bytes, wait: float = 5.0) -> bytes:
    """Send `data` on a fresh connection; what came back before the server closed it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        with contextlib.suppress(OSError):  # refused mid-send: the answer or close counts
            sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return received


# -- 2. one request must not hold the event loop or gigabytes -------------------------------


def test_thirty_thousand_tiny_messages_are_refused_unread(server: Server) -> None:
    messages = [{"role": "user", "content": "hi"}] * 30_000
    body = json.dumps({"model": "milliwatt", "messages": messages}).encode()
    assert len(body) > 1_000_000
    started = time.monotonic()
    reply = post(server, body)
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "too_large"
    assert time.monotonic() - started < 2
    assert httpx.get(server.url + "/healthz", timeout=2).status_code == 200


def test_too_many_messages_and_too_long_a_message(server: Server) -> None:
    many = [{"role": "user", "content": "hi"}] * 300
    reply = post(server, json.dumps({"model": "milliwatt", "messages": many}).encode())
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "messages"
    reply = post(server, chat_body("a" * 70_000))
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "messages.0.content"


def test_ten_megabyte_message_is_refused_by_its_declared_size(server: Server) -> None:
    reply = post(server, chat_body("x" * 10_000_000))
    assert reply.status_code == 413


def test_fifty_megabyte_header_is_not_answered_200(server: Server) -> None:
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 50_000_000 + b"\r\n\r\n"
    )
    answer = raw_exchange(server, request)
    assert not answer.startswith(b"HTTP/1.1 200")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4")


def test_twenty_thousand_headers_are_refused(server: Server) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(20_000))
    answer = raw_exchange(
        server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 4")
    few = b"".join(b"X-H%d: v\r\n" % i for i in range(150))  # under the byte limit
    answer = raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + few + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")


def test_half_sent_request_line_is_closed_at_the_deadline(server: Server) -> None:
    started = time.monotonic()
    answer = raw_exchange(server, b"GET /healthz HT", wait=30)
    assert answer == b""
    assert time.monotonic() - started < 5  # request_timeout_seconds = 1 in TOOLS_ONLY


def test_headers_over_the_byte_limit_get_431_however_they_arrive(server: Server) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    assert raw_exchange(server, big).startswith(b"HTTP/1.1 431")  # one chunk, headers whole
    start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    assert trickled_headers_answer(server.port, start).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",  # smuggling: which length?
        b"Content-Length: 4\r\nContent-Length: 5\r\n",
        b"Transfer-Encoding: xchunked\r\n",
        b"X-Folded: a\r\n b\r\n",  # obsolete line folding
        b"Host : 127.0.0.1\r\n",  # a space before the colon
    ],
)
def test_ambiguous_framing_and_malformed_headers_get_400(server: Server, head: bytes) -> None:
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head
    answer = raw_exchange(server, request + b"Connection: close\r\n\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.count(b"HTTP/1.1") == 1  # nothing smuggled in behind it


def test_a_large_body_in_the_headers_chunk_is_not_a_large_header(server: Server) -> None:
    body = chat_body("what is 2+3", padding="x" * 50_000)  # one sendall: headers and body
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" % (
        CHAT.encode()
    )
    request = head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    answer = raw_exchange(server, request)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server: Server) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(server, one + one + last)
    assert answer.count(b"HTTP/1.1 200") == 3
    assert answer.rindex(b'"status"') < answer.index(b'"object"')


def test_a_connection_refused_before_its_body_ended_does_not_linger(server: Server) -> None:
    body = b"x" * 1_100_000  # over max_body_bytes: 413 from the declared length, unread
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" % (
        CHAT.encode()
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body))
        answer = sock.recv(65536)
        with contextlib.suppress(OSError):  # the body sent after the answer, then idle
            sock.sendall(body)
        started = time.monotonic()
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass
    assert answer.startswith(b"HTTP/1.1 413")
    assert time.monotonic() - started < 8  # closed by the deadline or the keep-alive timer


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):  # the answer, then the close
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < 8  # keep_alive_seconds (5) or the deadline (1)


# -- 3. the caller is who the tools see -----------------------------------------------------


def test_one_callers_graph_is_not_another_callers(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(TOOLS_ONLY)
    mallory = ToolContext(user="mallory", data_dir=tmp_path / "data")
    store_graph(
        mallory,
        "default",
        [Edge(source="Ada Street", target="Admin Vault", weight=7.0)],
        directed=False,
    )
    server.start()
    question = "shortest path from Ada Street to Admin Vault"
    own = post(server, chat_body(question, user="mallory"))
    assert own.status_code == 200
    assert own.json()["milliwatt"]["route"] == "tool"
    for caller in ("eve", None):  # neither eve nor an anonymous caller has a graph: the model
        other = post(server, chat_body(question, user=caller))
        assert other.status_code == 503, other.text
        assert "Admin Vault" not in other.text


# -- 4. browsers: DNS rebinding, CSRF -------------------------------------------------------


def test_rebound_host_cross_origin_and_form_posts_are_refused(server: Server) -> None:
    body = chat_body("what is 2+3", user="ada")
    form = "application/x-www-form-urlencoded"
    rebound = post(
        server,
        body,
        host="rebind.evil.example",
        origin="http://evil.example",
        **{"content-type": form},
    )
    assert rebound.status_code == 421
    assert post(server, body, origin="http://evil.example").status_code == 403
    assert post(server, body, **{"content-type": form}).status_code == 415
    assert post(server, body, **{"content-type": "text/plain"}).status_code == 415
    own_page = post(server, body, origin=f"http://localhost:{server.port}")
    assert own_page.status_code == 200
    assert post(server, body, host=f"localhost:{server.port}").status_code == 200


# -- 5. data files are private from the start ----------------------------------------------


def test_data_files_are_private_and_doctor_warns_otherwise(server: Server) -> None:
    reply = post(server, chat_body("what is 2+3", user="ada"))
    assert reply.status_code == 200
    data = Path(server.env["MILLIWATT_DATA_DIR"])
    assert data.stat().st_mode & 0o777 == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "sessions.db-wal" for p in files)
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: 0o600 for p in files}
    assert _data_permissions(data) == "private"
    data.chmod(0o755)
    (data / "sessions.db").chmod(0o644)
    warning = _data_permissions(data)
    assert warning.startswith("warning") and "sessions.db 644" in warning


# -- 6. stored text is printed, never interpreted --------------------------------------------


def test_sessions_show_prints_stored_text_literally(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stored = [
        'how many x are in "[/bogus]"',
        "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ \x1b[31mred\x9b",
        "[link=http://evil.example]docs[/link]",
    ]
    store = SqliteSessionStore(data / "sessions.db")
    store.append_turn("ada", "milliwatt", [Message("user", text) for text in stored], TurnCost())
    store.close()
    env = {
        **os.environ,
        "MILLIWATT_DATA_DIR": str(data),
        "MILLIWATT_CONFIG": str(tmp_path / "m.toml"),
    }
    (tmp_path / "m.toml").write_text(TOOLS_ONLY)
    for args in (["show", "ada"], ["list"], ["show", "ada", "--json"]):
        shown = subprocess.run(
            [sys.executable, "-m", "milliwatt.cli", "sessions", *args],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\x9b" not in shown.stdout
    assert '"[/bogus]"' in shown.stdout or "[/bogus]" in shown.stdout
    plain = subprocess.run(
        [sys.executable, "-m", "milliwatt.cli", "sessions", "show", "ada"],
        capture_output=True, text=True, env=env, timeout=120,
    ).stdout  # fmt: skip
    assert 'how many x are in "[/bogus]"' in plain
    assert "[link=http://evil.example]docs[/link]" in plain
    assert "\\u001b]8;;http://evil.example" in plain and "\\u001b[31mred\\u009b" in plain


# -- 7. a lone surrogate is text the WAF reads, not a crash ---------------------------------


def test_lone_surrogate_in_json_is_not_a_server_error(server: Server) -> None:
    reply = post(
        server, b'{"model":"milliwatt","messages":[{"role":"user","content":"2+3 \\ud800"}]}'
    )
    assert reply.status_code < 500, reply.text


# -- 8. look-alike session names ------------------------------------------------------------


def test_trailing_newline_is_refused_and_fullwidth_is_the_same_session(server: Server) -> None:
    reply = post(server, chat_body(user="ada\n"))
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "user"
    assert post(server, chat_body(user="ada")).status_code == 200
    wide = post(server, chat_body(user="\uff41\uff44\uff41"))
    assert wide.status_code == 200 and wide.json()["milliwatt"]["session"] == "ada"


# -- 9. what errors echo --------------------------------------------------------------------


def test_a_megabyte_user_is_not_echoed_back(server: Server) -> None:
    for user in ("u" * 900_000, "u" * 60_000):  # refused before the WAF; by the schema
        reply = post(server, chat_body(user=user))
        assert reply.status_code == 400 and reply.json()["error"]["param"] == "user"
        assert len(reply.content) < 2_000


def test_audit_log_keeps_no_secrets_from_prompts_or_query_strings(server: Server) -> None:
    secrets = ["ada@example.com", "4111 1111 1111 1111", "hunter2", "sk-live-123"]
    prompt = (
        "<script>alert(1)</script> mail ada@example.com card 4111 1111 1111 1111 password: hunter2"
    )
    reply = httpx.post(
        f"{server.url}{CHAT}?api_key=sk-live-123",
        content=chat_body(prompt, user="ada"),
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 403  # the WAF refused it and logged why
    log = Path(server.env["MILLIWATT_DATA_DIR"]) / "audit.jsonl"
    deadline = time.monotonic() + 10  # the record is written once the answer has gone
    # wait for this request's record (others, such as the start's /healthz, may come first)
    while "api_key=" not in (audit := log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "api_key=[redacted]" in audit and "XSS" in audit, (
        reply.text,
        server.log.read_text()[-3000:],
        sorted(p.name for p in log.parent.iterdir()),
    )
    assert [s for s in secrets if s in audit] == []
