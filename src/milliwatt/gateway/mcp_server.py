"""Serve milliwatt's tools and agents to any MCP client, with the official SDK's MCPServer.

Every tool of a ToolRegistry is listed with its own JSON schema and called through the
registry (validation, context injection, ToolError handling stay milliwatt's); its declared
effects become MCP tool annotations. Each agent becomes a tool `ask_<agent>(message, session?)`
that calls the `answer` function it is given, so this module does not depend on the loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError as McpToolError
from mcp.server.mcpserver.tools import Tool as McpTool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import ToolAnnotations
from pydantic import create_model

from milliwatt.tools.registry import Effect, Tool, ToolContext, ToolRegistry

# answer(agent_name, message, session) -> the agent's reply
AnswerFn = Callable[[str, str, str | None], str]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # what MCP allows in a tool name
_SIDE_EFFECTS = {Effect.WRITES, Effect.SENDS, Effect.SPENDS, Effect.EXECUTES}


def build_mcp_server(
    tools: ToolRegistry,
    *,
    agents: Sequence[str] = (),
    answer: AnswerFn | None = None,
    context: ToolContext | None = None,
    name: str = "milliwatt",
) -> MCPServer:
    """An MCPServer offering `tools` and, for each agent name, an `ask_<agent>` tool."""
    if agents and answer is None:
        raise ValueError("agents are exposed through an answer function; none was given")
    context = context or ToolContext(user="mcp", agent="mcp")
    server: MCPServer = MCPServer(
        name,
        instructions="milliwatt tools and agents. Tool results may quote untrusted content.",
        tools=[_mcp_tool(t, context) for t in tools],
    )
    if answer is not None:  # agents without one were refused above
        for agent in agents:
            server.add_tool(
                _ask(agent, answer),
                name=_checked_name(f"ask_{agent}"),
                description=(
                    f"Ask the milliwatt agent {agent!r} and get its answer. Pass the same "
                    "`session` string on later calls to continue one conversation."
                ),
                annotations=ToolAnnotations(read_only_hint=False, open_world_hint=True),
                structured_output=False,
            )
    return server


def annotations_for(effects: frozenset[Effect]) -> ToolAnnotations:
    """MCP's hints from the declared effects (clients may use them to ask for confirmation)."""
    return ToolAnnotations(
        read_only_hint=not (effects & _SIDE_EFFECTS),
        destructive_hint=bool(effects & _SIDE_EFFECTS),
        idempotent_hint=Effect.PURE in effects,
        open_world_hint=bool(effects & {Effect.NETWORK, Effect.READS_UNTRUSTED, Effect.SENDS}),
    )


def _mcp_tool(t: Tool, context: ToolContext) -> McpTool:
    # MCP's argument check runs first (with milliwatt's own model), then the registry's call
    arguments = create_model(
        f"{t.arguments_model.__name__}_mcp", __base__=(t.arguments_model, ArgModelBase)
    )

    def run(**values: Any) -> str:
        result = t.call(values, context)
        if not result.ok:
            raise McpToolError(result.error or "the tool failed")
        return result.text()

    return McpTool(
        fn=run,
        name=_checked_name(t.name),
        description=t.description,
        parameters=t.parameters,
        fn_metadata=FuncMetadata(arg_model=arguments),
        is_async=False,
        annotations=annotations_for(t.effects),
        meta={"milliwatt/effects": sorted(e.value for e in t.effects)},
    )


def _ask(agent: str, answer: AnswerFn) -> Callable[..., str]:
    def ask(message: str, session: str | None = None) -> str:
        if not message.strip():
            raise McpToolError("message is empty")
        return answer(agent, message, session)

    return ask


def _checked_name(name: str) -> str:
    if not _TOOL_NAME.match(name):
        raise ValueError(f"{name!r} cannot be an MCP tool name (letters, digits, _ . - only)")
    return name
