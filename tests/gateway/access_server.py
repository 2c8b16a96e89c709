"""The whole server (guard, access, WAF, API) on a loopback port in this process, with a
scripted model: tenants' tools are called on command, and a stream can be made slow."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from tests.conftest import free_port

from milliwatt.agent.runtime import Runtime
from milliwatt.config import AgentConfig, ModelConfig, Settings, ShieldConfig, ToolSelectionConfig
from milliwatt.gateway.server import build_server_app
from milliwatt.models.base import (
    DEFAULT_GENERATION,
    GenerationSettings,
    Message,
    ModelResponse,
    StreamChunk,
    ToolCall,
    ToolSpec,
)
from milliwatt.models.fake import FakeModel

TOOLS = ["remember", "recall", "calendar.*", "knowledge.search"]


def commanded(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse | str:
    """`CALL name {json}` calls that tool; after a tool's result, the answer is that result;
    anything else is echoed with the number of earlier messages the model was shown."""
    last = messages[-1]
    if last.role == "tool":
        return "RESULT " + last.content
    if last.content.startswith("CALL "):
        name, _, args = last.content[5:].partition(" ")
        return ModelResponse("fake", tool_calls=[ToolCall("c1", name, json.loads(args or "{}"))])
    if last.content.startswith("SLOW "):
        return " ".join(f"word{i}" for i in range(int(last.content.split()[1])))
    history = [m.content for m in messages if m.role in ("user", "assistant")][:-1]
    return "ECHO " + json.dumps(history)


class SlowFake(FakeModel):
    """A fake whose stream takes `delay` seconds a word: time to revoke a key mid-stream."""

    delay = 0.05

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        for chunk in super().stream(
            messages, tools=tools, json_schema=json_schema, settings=settings
        ):
            if chunk.text:
                time.sleep(self.delay)
                if settings.cancel is not None and settings.cancel.is_set():
                    return
            yield chunk


class AccessServer:
    def __init__(self, workdir: Path, storage_url: str | None = None, **access: object) -> None:
        self.data_dir = workdir / "data"
        agent = dict(
            models=["fake"], tools=TOOLS, tool_selection=ToolSelectionConfig(enabled=False)
        )
        self.settings = Settings(
            data_dir=self.data_dir,
            models={"fake": ModelConfig(backend="openai", base_url="http://127.0.0.1:9/v1")},
            agents=[AgentConfig(name="helper", **agent), AgentConfig(name="other", **agent)],  # type: ignore[arg-type]
            shield=ShieldConfig(rules="baseline"),
            access=access,  # type: ignore[arg-type]
            storage={"url": storage_url},  # type: ignore[arg-type]
        )
        self.runtime = Runtime(self.settings)
        self.model = SlowFake(commanded)
        self.runtime._models["fake"] = self.model  # the scripted model stands in for the remote
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, *, no_auth: bool = False) -> AccessServer:
        app = build_server_app(
            self.settings, log=lambda _: None, host="127.0.0.1", port=self.port,
            no_auth=no_auth, runtime=self.runtime,
        )  # fmt: skip
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError("the server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.runtime.close()
