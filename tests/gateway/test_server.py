"""`milliwatt serve` as a user runs it: a real process on loopback, the official openai client,
the bundled model, and kill -9 between turns."""

from __future__ import annotations

import httpx
import openai
import pytest
from tests.conftest import Server, free_port

DEAD_BACKEND = f"""
[models.smollm2-135m]
max_tokens = 48
timeout_seconds = 600

[models.remote]
backend = "openai"
base_url = "http://127.0.0.1:{free_port()}/v1"
timeout_seconds = 2

[[agents]]
name = "milliwatt"

[[agents]]
name = "broken"
models = ["remote"]
"""


@pytest.fixture
def server(make_server) -> Server:  # type: ignore[no-untyped-def]
    return make_server(DEAD_BACKEND).start()


def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_models_and_health(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    ids = [m.id for m in client(server).models.list()]
    assert ids == ["milliwatt", "broken"]


def test_openai_client_plain_and_streamed(server: Server) -> None:
    api = client(server)
    reply = api.chat.completions.create(
        model="milliwatt", messages=[{"role": "user", "content": "Say hello."}]
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    stream = api.chat.completions.create(
        model="milliwatt", messages=[{"role": "user", "content": "Say hello."}], stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len([p for p in pieces if p]) > 1  # streamed token by token
    assert "".join(pieces).strip()


def test_session_survives_kill_9(server: Server, make_server) -> None:  # type: ignore[no-untyped-def]
    api = client(server)
    first = api.chat.completions.create(
        model="milliwatt", user="ada", messages=[{"role": "user", "content": "My name is Ada."}]
    )
    second = api.chat.completions.create(
        model="milliwatt",
        messages=[{"role": "user", "content": "What is my name?"}],
        extra_headers={"X-Session-Id": "ada"},
    )
    server.kill()  # SIGKILL: no shutdown hooks run
    restarted = Server(server.workdir, DEAD_BACKEND).start()
    try:
        body = client(restarted).chat.completions.create(
            model="milliwatt", user="ada", messages=[{"role": "user", "content": "Thanks."}]
        )
        assert body.choices[0].message.content is not None
        shown = httpx.get(f"{restarted.url}/healthz").json()
        assert shown["status"] == "ok"
    finally:
        restarted.stop()
    from milliwatt.memory.sqlite import SqliteSessionStore

    store = SqliteSessionStore(server.workdir / "data" / "sessions.db")
    history = [(m.role, m.content) for m in store.history("ada")]
    store.close()
    assert history[:4] == [
        ("user", "My name is Ada."),
        ("assistant", first.choices[0].message.content),
        ("user", "What is my name?"),
        ("assistant", second.choices[0].message.content),
    ]
    assert history[4] == ("user", "Thanks.") and len(history) == 6


def post(server: Server, body: bytes | dict, **headers: str) -> httpx.Response:  # type: ignore[type-arg]
    url = f"{server.url}/v1/chat/completions"
    if isinstance(body, bytes):
        return httpx.post(
            url, content=body, headers={"content-type": "application/json", **headers}
        )
    return httpx.post(url, json=body, headers=headers, timeout=60)


def test_malformed_json_is_400(server: Server) -> None:
    reply = post(server, b'{"model": "milliwatt", "messages": [')
    assert reply.status_code == 400
    error = reply.json()["error"]  # the WAF's JSON body processor refuses it first
    assert error["message"] and reply.headers["x-request-id"]


def test_malformed_json_behind_no_waf_is_named_by_the_api() -> None:
    from milliwatt.gateway.schemas import ApiError, parse_chat_request

    with pytest.raises(ApiError, match="not valid JSON") as caught:
        parse_chat_request(b'{"model": "milliwatt", "messages": [')
    assert caught.value.status == 400 and caught.value.code == "invalid_json"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "milliwatt"}, "messages"),
        ({"model": "milliwatt", "messages": []}, "messages"),
        (
            {"model": "milliwatt", "messages": [{"role": "robot", "content": "hi"}]},
            "messages.0.role",
        ),
        ({"model": "milliwatt", "messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        (
            {
                "model": "milliwatt",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 9,
            },
            "temperature",
        ),
    ],
)
def test_bad_fields_are_400_naming_the_field(server: Server, body: dict, param: str) -> None:  # type: ignore[type-arg]
    reply = post(server, body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == param and param in error["message"]
    assert error["type"] == "invalid_request_error"


def test_bad_session_name_is_400(server: Server) -> None:
    # too long to be a session name, yet nothing the WAF would call an attack ("../" is)
    body = {
        "model": "milliwatt",
        "user": "x" * 200,
        "messages": [{"role": "user", "content": "hi"}],
    }
    reply = post(server, body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "user"


def test_unknown_model_is_404(server: Server) -> None:
    with pytest.raises(openai.NotFoundError):
        client(server).chat.completions.create(
            model="gpt-9", messages=[{"role": "user", "content": "hi"}]
        )


def test_request_larger_than_the_context_is_400(server: Server) -> None:
    reply = post(
        server, {"model": "milliwatt", "messages": [{"role": "user", "content": "word " * 9000}]}
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "context_length_exceeded" and "2048" in error["message"]


def test_failing_backend_is_503_and_the_session_stays_consistent(server: Server) -> None:
    body = {"model": "broken", "user": "s1", "messages": [{"role": "user", "content": "hi"}]}
    reply = post(server, body)
    assert reply.status_code == 503
    assert reply.headers["retry-after"].isdigit()
    assert reply.json()["error"]["type"] == "server_error"
    streamed = post(server, body | {"stream": True})
    assert streamed.status_code == 503
    from milliwatt.memory.sqlite import SqliteSessionStore

    store = SqliteSessionStore(server.workdir / "data" / "sessions.db")
    assert store.history("s1") == []  # no half-written turn
    store.close()
