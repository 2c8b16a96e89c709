"""Assemble what `milliwatt serve` runs: the runtime, the API and the shield in front."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp

from milliwatt.agent.runtime import Runtime
from milliwatt.config import Settings
from milliwatt.gateway.app import create_app


def build_server_app(settings: Settings, log: Callable[[str], None] = print) -> ASGIApp:
    runtime = Runtime(settings)
    for name in runtime.agent_names:  # load models now, so the first request is fast
        runtime.agent(name)
    app: ASGIApp = create_app(runtime)
    log(
        f"milliwatt: agents {', '.join(runtime.agent_names)}; data in {settings.data_dir}; "
        f"http://{settings.host}:{settings.port}/v1"
    )
    return app
