"""milliwatt as an MCP server: the official SDK client talks to it in process and over
stdio and HTTP to `python -m milliwatt.cli mcp serve` subprocesses."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from milliwatt.gateway.mcp_cli import app as mcp_app
from milliwatt.gateway.mcp_server import build_mcp_server
from milliwatt.tools.mcp_client import McpClient, McpServerConfig
from milliwatt.tools.registry import Effect

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
TOOLS = f"{HERE / 'mcp_demo_tools.py'}:registry"

spec = importlib.util.spec_from_file_location("mcp_demo_tools", HERE / "mcp_demo_tools.py")
assert spec is not None and spec.loader is not None
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content)


def serve_args(*extra: str) -> list[str]:
    return ["-m", "milliwatt.cli", "mcp", "serve", "--tools", TOOLS, *extra]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(SRC), "MILLIWATT_DATA_DIR": str(tmp_path)}


def in_process(server: Any, job: Any) -> Any:
    async def main() -> Any:
        async with Client(server) as client:
            return await job(client)

    return anyio.run(main)


def test_tools_are_listed_with_their_schemas_and_effects() -> None:
    registry = demo.registry()
    server = build_mcp_server(registry)
    listed = in_process(server, lambda c: c.list_tools()).tools
    by_name = {t.name: t for t in listed}
    assert set(by_name) == {"distance", "countdown"}
    assert by_name["distance"].input_schema == registry.get("distance").parameters
    assert by_name["distance"].annotations.read_only_hint is True
    assert by_name["distance"].annotations.idempotent_hint is True
    assert by_name["countdown"].annotations.destructive_hint is True
    assert by_name["countdown"].meta == {"milliwatt/effects": [Effect.WRITES.value]}


def test_calls_go_through_the_registry() -> None:
    server = build_mcp_server(demo.registry())

    async def calls(client: Client) -> list[Any]:
        return [
            await client.call_tool("distance", {"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}}),
            await client.call_tool("countdown", {"start": 3}),
            await client.call_tool("countdown", {"start": -1}),
            await client.call_tool("distance", {"a": {"x": 0}, "b": {"x": 1, "y": 1}}),
            await client.call_tool("countdown", {"start": 1, "extra": True}),
        ]

    ok, context, refused, invalid, unknown = in_process(server, calls)
    assert not ok.is_error and text_of(ok) == "5.0"
    assert text_of(context) == "mcp: 3 2 1 0"  # the tool context is injected
    assert refused.is_error and "start must not be negative" in text_of(refused)
    assert invalid.is_error and "y" in text_of(invalid)
    assert unknown.is_error and "extra" in text_of(unknown)


def test_agents_are_offered_as_ask_tools() -> None:
    asked: list[tuple[str, str, str | None]] = []

    def answer(agent: str, message: str, session: str | None) -> str:
        asked.append((agent, message, session))
        return f"{agent} heard {message!r}"

    server = build_mcp_server(demo.registry(), agents=["milliwatt", "coder"], answer=answer)

    async def job(client: Client) -> list[Any]:
        names = [t.name for t in (await client.list_tools()).tools]
        first = await client.call_tool("ask_coder", {"message": "hi", "session": "s1"})
        second = await client.call_tool("ask_milliwatt", {"message": "again"})
        empty = await client.call_tool("ask_milliwatt", {"message": "  "})
        return [names, first, second, empty]

    names, first, second, empty = in_process(server, job)
    assert {"ask_milliwatt", "ask_coder", "distance"} <= set(names)
    assert text_of(first) == "coder heard 'hi'" and text_of(second) == "milliwatt heard 'again'"
    assert empty.is_error
    assert asked == [("coder", "hi", "s1"), ("milliwatt", "again", None)]


def test_misconfiguration_is_refused() -> None:
    with pytest.raises(ValueError, match="answer function"):
        build_mcp_server(demo.registry(), agents=["milliwatt"])
    with pytest.raises(ValueError, match="cannot be an MCP tool name"):
        build_mcp_server(demo.registry(), agents=["has space"], answer=lambda a, m, s: "")


def test_official_client_over_stdio(env: dict[str, str]) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=serve_args("--no-agents"), env=env, cwd=str(HERE)
    )

    async def job(client: Client) -> tuple[list[str], Any]:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        return names, await client.call_tool("countdown", {"start": 2})

    names, result = in_process(params, job)
    assert names == ["countdown", "distance"]
    assert text_of(result) == "mcp: 2 1 0"


def test_stdio_offers_the_configured_agents(env: dict[str, str]) -> None:
    if importlib.util.find_spec("milliwatt.agent.runtime") is None:
        pytest.skip("the agent runtime is not part of this build")
    params = StdioServerParameters(command=sys.executable, args=serve_args(), env=env)
    listed = in_process(params, lambda c: c.list_tools()).tools
    assert "ask_milliwatt" in [t.name for t in listed]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_url(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, *serve_args("--no-agents", "--http", f"127.0.0.1:{port}")],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mcp serve exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(timeout=10)


def test_official_client_over_http(http_url: str) -> None:
    async def job(client: Client) -> Any:
        return await client.call_tool("distance", {"a": {"x": 1, "y": 1}, "b": {"x": 4, "y": 5}})

    assert text_of(in_process(http_url, job)) == "5.0"


def test_milliwatt_client_uses_milliwatt_server(http_url: str, env: dict[str, str]) -> None:
    """Both directions at once: the served tools come back as typed, prefixed tools."""
    with McpClient(McpServerConfig(name="peer", url=http_url)) as client:
        tools = {t.name: t for t in client.tools()}
    assert set(tools) == {"peer.distance", "peer.countdown"}
    with McpClient(
        McpServerConfig(name="local", command=[sys.executable, *serve_args("--no-agents")], env=env)
    ) as client:
        countdown = {t.name: t for t in client.tools()}["local.countdown"]
        assert countdown.call({"start": 1}).value == "mcp: 1 0"
        refused = countdown.call({"start": -2})
        assert not refused.ok and "start must not be negative" in (refused.error or "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "0.0.0.0:8765"], "not a loopback address"),
        (["--http", "localhost"], "is not HOST:PORT"),
        (["--http", "127.0.0.1:99999"], "is not HOST:PORT"),
        (["--tools", "no_such_module_xyz:registry"], "cannot load"),
        (["--tools", f"{HERE / 'mcp_demo_tools.py'}:Point"], "cannot load"),
        (["--tools", "os:getcwd"], "returned str, not a ToolRegistry"),
    ],
)
def test_cli_refuses_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(mcp_app, ["serve", "--no-agents", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())
