"""The Ray Serve deployments: a model tier, and the gateway (milliwatt's whole server app)
that uses the tiers of its PoP. Imports Ray: load it only where the `ray` extra is installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import ray
from ray import serve
from starlette.types import ASGIApp, Receive, Scope, Send

from milliwatt.cluster.plan import POP_RESOURCE, PopPlan
from milliwatt.cluster.remote_model import RemoteModel
from milliwatt.config import ModelConfig, Settings
from milliwatt.models.base import GenerationSettings, Message, StreamChunk, ToolSpec
from milliwatt.models.loader import load_model


class ModelTier:
    """One model (a llama.cpp GGUF, an OpenAI-compatible backend) in one replica."""

    def __init__(self, name: str, config: dict[str, Any], pop: str) -> None:
        self.model = load_model(name, ModelConfig.model_validate(config))
        self.pop = pop

    def info(self) -> dict[str, Any]:
        m = self.model
        return {
            "name": m.name, "context_length": m.context_length, "local": m.local,
            "provider": m.provider, "max_tokens": m.max_tokens,
            "joules_per_token": m.joules_per_token, "ignore_eos": m.ignore_eos,
        }  # fmt: skip

    def placement(self) -> dict[str, Any]:
        """Where this replica runs: its node, and that node's PoP resources."""
        return _placement()

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
        return self.model.count_tokens(messages, tools)

    def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        json_schema: dict[str, Any] | None,
        settings: GenerationSettings,
    ) -> Iterator[StreamChunk]:
        yield from self.model.stream(
            messages, tools=tools, json_schema=json_schema, settings=settings
        )


class Gateway:
    """The PoP's ingress: `milliwatt serve`'s app (guard, WAF, keys, agents, sessions) with
    the PoP's tier deployments as its models."""

    # Serve awaits an async constructor: the tiers' info is awaited on the replica's loop,
    # where a blocking .result() is refused
    async def __init__(  # type: ignore[misc]
        self, settings: dict[str, Any], pop: str, tiers: dict[str, Any], host: str, port: int
    ) -> None:
        self.pop = pop
        self.host, self.port = host, port
        self.settings = _with_tiers(Settings.model_validate(settings), set(tiers))
        self.models = {
            name: RemoteModel(handle, await handle.info.remote(), pop)
            for name, handle in tiers.items()
        }

    def placement(self) -> dict[str, Any]:
        return _placement()

    def __serve_build_asgi_app__(self) -> ASGIApp:
        from milliwatt.agent.runtime import Runtime
        from milliwatt.gateway.server import build_server_app

        runtime = Runtime(self.settings)
        for name, model in self.models.items():
            runtime.provide_model(name, model)
        app = build_server_app(
            self.settings, log=print, host=self.host, port=self.port, runtime=runtime
        )
        return _UnderPrefix(app)


class _UnderPrefix:
    """Serve mounts a PoP's app at /NAME (scope root_path); milliwatt's guard, keys and WAF
    look at the path itself, so they get the path below the prefix."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = scope.get("root_path", "")
        if scope["type"] in {"http", "websocket"} and prefix:
            path = scope["path"]
            below = path[len(prefix) :] if path.startswith(prefix) else path
            scope = {**scope, "root_path": "", "path": below or "/"}
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def _with_tiers(settings: Settings, present: set[str]) -> Settings:
    """The agents with the tiers this PoP has (a PoP without a GPU has no GPU tier)."""
    for agent in settings.agents:
        agent.models = [m for m in agent.models if m in present]
        if not agent.models:
            raise ValueError(f"agent {agent.name!r}: none of its models is deployed here")
    return settings


def _placement() -> dict[str, Any]:
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    node = next(n for n in ray.nodes() if n["NodeID"] == node_id)
    pops = sorted(r.split(":", 1)[1] for r in node["Resources"] if r.startswith("pop:"))
    return {"node_id": node_id, "pops": pops, "pid": os.getpid()}


def tiers_in_use(settings: Settings) -> list[str]:
    return list(dict.fromkeys(m for agent in settings.agents for m in agent.models))


def application(plan: PopPlan, settings: Settings, host: str, port: int) -> Any:
    """The PoP's Serve application: its tier deployments bound into its gateway."""
    tiers = {}
    for model, deployment in plan.tiers.items():
        config = settings.models[model].model_dump(mode="json")
        tier = serve.deployment(name=deployment.name, **deployment.options)(ModelTier)
        tiers[model] = tier.bind(model, config, plan.pop)
    ingress = serve.ingress()(Gateway)
    gateway = serve.deployment(name=plan.gateway.name, **plan.gateway.options)(ingress)
    data = settings.model_dump(mode="json")
    return gateway.bind(data, plan.pop, tiers, host, port)


def gpu_pops(pops: Sequence[str]) -> set[str]:
    """The PoPs that have a live node with a GPU."""
    found = set()
    for node in ray.nodes():
        resources = node.get("Resources", {})
        if node.get("Alive") and resources.get("GPU", 0) > 0:
            found |= {p for p in pops if POP_RESOURCE.format(p) in resources}
    return found
