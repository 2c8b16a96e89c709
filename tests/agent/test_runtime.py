"""Agents built from configuration: tool patterns, per-agent egress policy, shared models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from milliwatt.agent.runtime import Runtime, UnknownAgentError
from milliwatt.config import AgentConfig, Settings
from milliwatt.tools.registry import ToolContext


class Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (
            b"<html><head><title>Loopback</title></head><body><p>Hello from here.</p></body></html>"
        )
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path,
        agents=[
            AgentConfig(
                name="inside",
                tools=["web.*", "math.calculate"],
                egress={"allow_networks": ["127.0.0.0/8"], "ports": None},  # type: ignore[arg-type]
            ),
            AgentConfig(name="outside", tools=["web.fetch"]),
        ],
    )
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def test_tool_patterns_select_tools(runtime: Runtime) -> None:
    assert runtime.agent("inside").tools.names() == ["math.calculate", "web.fetch", "web.search"]
    assert runtime.agent("outside").tools.names() == ["web.fetch"]
    assert runtime.agent("inside").model is runtime.agent("outside").model  # loaded once


def test_egress_policy_is_per_agent(runtime: Runtime, page: str) -> None:
    fetched = runtime.agent("inside").tools.call(
        "web.fetch", {"url": page}, ToolContext(agent="inside")
    )
    assert fetched.ok and fetched.untrusted and "Hello from here" in fetched.value["text"]
    refused = runtime.agent("outside").tools.call(
        "web.fetch", {"url": page}, ToolContext(agent="outside")
    )
    assert not refused.ok and "loopback" in (refused.error or "")


def test_unknown_agent_and_tool_pattern(tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path, agents=[AgentConfig(tools=["maths.*"])]))
    with pytest.raises(UnknownAgentError):
        runtime.agent("nobody")
    with pytest.raises(ValueError, match=r"'maths\.\*' matches no tool"):
        runtime.agent()
    runtime.close()
