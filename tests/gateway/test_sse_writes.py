"""How a streamed answer is written: events already waiting go out in one write, and a model's
tokens still go out as they come."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import Message
from tests.gateway.live_app import PacedModel

from milliwatt.agent.runtime import Runtime
from milliwatt.config import BUNDLED_MODEL, Settings
from milliwatt.gateway.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    agents = [{"name": "milliwatt", "tools": ["math.*"]}]
    runtime = Runtime(Settings(data_dir=tmp_path / "data", agents=agents))
    runtime.provide_model(BUNDLED_MODEL, PacedModel(pace=0.05))
    yield runtime
    runtime.close()


async def body_writes(runtime: Runtime, question: str) -> list[bytes]:
    """The body of each `http.response.body` message the app sends for a streamed request."""
    request = {"model": "milliwatt", "stream": True,
               "messages": [{"role": "user", "content": question}]}  # fmt: skip
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "raw_path": b"",
             "query_string": b"", "headers": [(b"content-type", b"application/json")],
             "http_version": "1.1", "scheme": "http", "root_path": "",
             "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000)}  # fmt: skip
    sent: list[Message] = []
    received = False

    async def receive() -> Message:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": json.dumps(request).encode()}
        await asyncio.Event().wait()  # the client stays until the answer is complete
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await create_app(runtime)(scope, receive, send)
    return [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]


def events(writes: list[bytes]) -> list[str]:
    lines = b"".join(writes).decode().split("\n\n")
    return [line.removeprefix("data: ") for line in lines if line]


async def test_a_tool_answer_is_one_write_of_every_event_in_order(runtime: Runtime) -> None:
    writes = await body_writes(runtime, "what is 234 * 567")
    assert len([w for w in writes if w]) == 1
    stream = events(writes)
    assert stream[-1] == "[DONE]"
    chunks = [json.loads(e) for e in stream[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "132678" in chunks[1]["milliwatt"]["tool_call"]["result"]
    assert "132678" in chunks[2]["choices"][0]["delta"]["content"]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"


async def test_a_model_answer_still_streams_as_it_is_generated(runtime: Runtime) -> None:
    writes = await body_writes(runtime, "Say something nice about the sea.")
    texts = [w for w in writes if b'"content": "' in w and b'"role"' not in w]
    assert len(texts) > 3  # the paced tokens, one write each
    assert events(writes)[-1] == "[DONE]"
