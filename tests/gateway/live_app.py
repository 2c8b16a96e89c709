"""The whole server app (telemetry, guard, WAF, API) on a loopback port, in this process,
with a scripted model in place of the bundled one: fast tests of what a user and an
operator see, through real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from tests.conftest import free_port

from milliwatt.agent.runtime import Runtime
from milliwatt.config import BUNDLED_MODEL, Settings
from milliwatt.gateway.server import build_server_app
from milliwatt.models.base import (
    DEFAULT_GENERATION,
    GenerationSettings,
    Message,
    StreamChunk,
    ToolSpec,
)
from milliwatt.models.fake import FakeModel


class PacedModel(FakeModel):
    """The fake model, one word every `pace` seconds: a stream that can be watched."""

    def __init__(self, pace: float = 0.0, name: str = BUNDLED_MODEL) -> None:
        super().__init__(lambda messages, tools: f"You said: {messages[-1].content}", name=name)
        self.pace = pace

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        for chunk in super().stream(messages, tools=tools, settings=settings):
            if self.pace and chunk.text:
                time.sleep(self.pace)
            yield chunk


@contextmanager
def live_app(data_dir: Path, model: FakeModel | None = None, **settings: Any) -> Iterator[str]:
    """Serve the app on 127.0.0.1; yields its base URL."""
    config = Settings(data_dir=data_dir, **settings)
    runtime = Runtime(config)
    runtime.provide_model(BUNDLED_MODEL, model or PacedModel())
    port = free_port()
    app = build_server_app(config, log=lambda _: None, host="127.0.0.1", port=port, runtime=runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()
