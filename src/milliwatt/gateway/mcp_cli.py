"""`milliwatt mcp serve`: offer milliwatt's tools and agents to MCP clients (stdio or HTTP)."""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from milliwatt.config import Settings, load_settings
from milliwatt.gateway.guard import transport_security
from milliwatt.gateway.mcp_server import AnswerFn, build_mcp_server
from milliwatt.tools.registry import ToolContext, ToolRegistry

app = typer.Typer(no_args_is_help=True)


@app.callback()
def mcp() -> None:
    """Model Context Protocol: serve milliwatt's tools and agents to MCP clients."""


@app.command()
def serve(
    http: Annotated[
        str | None,
        typer.Option(metavar="HOST:PORT", help="Serve streamable HTTP at /mcp instead of stdio."),
    ] = None,
    tools: Annotated[
        str | None,
        typer.Option(
            metavar="MODULE:FUNCTION",
            help="A function returning the ToolRegistry to serve (a module or a .py file); "
            "default: the built-in tools.",
        ),
    ] = None,
    agents: Annotated[
        bool, typer.Option("--agents/--no-agents", help="Offer each agent as ask_<agent>.")
    ] = True,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Listen on a non-loopback address. MCP clients are not authenticated: "
            "put an authenticating proxy in front.",
        ),
    ] = False,
) -> None:
    """Serve milliwatt's tools and agents over MCP (stdio by default)."""
    address = _parse_address(http, allow_remote) if http else None
    settings = load_settings()
    registry = _load_registry(tools)
    agent_names: list[str] = []
    answer: AnswerFn | None = None
    if agents:
        answer = _agent_answer(settings, registry)
        agent_names = [a.name for a in settings.agents] if answer else []
    context = ToolContext(
        user="mcp", agent="mcp", data_dir=settings.data_dir, storage_url=settings.storage.url
    )
    server = build_mcp_server(registry, agents=agent_names, answer=answer, context=context)
    typer.echo(
        f"milliwatt MCP server: {len(registry)} tool(s), {len(agent_names)} agent(s), "
        + (f"http://{address[0]}:{address[1]}/mcp" if address else "stdio"),
        err=True,  # stdout carries the protocol on stdio
    )
    if address is None:
        server.run("stdio")
    else:
        # the same Host/Origin allow-list as `milliwatt serve`, remote listening included
        security = transport_security(
            address[0], settings.server.allowed_hosts, settings.server.allowed_origins
        )
        server.run("streamable-http", host=address[0], port=address[1], transport_security=security)


def _parse_address(value: str, allow_remote: bool) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8765)")
    if not allow_remote and not _is_loopback(host):
        raise typer.BadParameter(
            f"{host} is not a loopback address and MCP clients are not authenticated; "
            "pass --allow-remote if an authenticating proxy is in front"
        )
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_registry(spec: str | None) -> ToolRegistry:
    if spec is None:
        try:
            from milliwatt.tools.builtin import builtin_registry, select_tools
        except ImportError:
            return ToolRegistry()
        registry = builtin_registry()
        return registry.subset(select_tools(registry, ["*"]))  # code execution stays opt-in
    target, sep, function = spec.rpartition(":")
    if not sep or not target or not function:
        raise typer.BadParameter(f"{spec!r} is not MODULE:FUNCTION", param_hint="--tools")
    try:
        if target.endswith(".py"):
            path = Path(target)
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise ImportError(f"no Python file at {path}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        registry = getattr(module, function)()
    except Exception as exc:  # whatever the named code raised, the option is what failed
        raise typer.BadParameter(f"cannot load {spec}: {exc}", param_hint="--tools") from None
    if not isinstance(registry, ToolRegistry):
        raise typer.BadParameter(f"{spec} returned {type(registry).__name__}, not a ToolRegistry")
    return registry


def _agent_answer(settings: Settings, registry: ToolRegistry) -> AnswerFn | None:
    """Answers from the agent runtime; models load on the first question, not at start."""
    try:
        from milliwatt.access.policies import PolicyOverrides
        from milliwatt.agent.runtime import Runtime
    except ImportError as exc:  # a build without the agent loop still serves its tools
        typer.echo(f"agents not offered: {exc}", err=True)
        return None

    runtime = Runtime(settings, tools=registry)
    runtime.policy_override = PolicyOverrides(runtime.data_dir).get  # operators' changes

    def answer(agent: str, message: str, session: str | None) -> str:
        return runtime.agent(agent).run(message, session=session, user="mcp").answer

    return answer
