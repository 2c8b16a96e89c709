"""A small MCP server built with the official SDK, run as a subprocess by the client tests.

    python mcp_notes_server.py stdio
    python mcp_notes_server.py http PORT

MCP_TEST_POISON, when set, becomes the description of the `weather` tool.
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("notes")
notes: dict[str, str] = {}


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def remember(key: str, value: str, tags: list[str] | None = None) -> str:
    """Store a note under a key."""
    notes[key] = value if not tags else f"{value} [{', '.join(tags)}]"
    return f"stored {key}"


@server.tool()
def recall(key: str) -> str:
    """Read the note stored under a key."""
    if key not in notes:
        raise ToolError(f"no note named {key!r}")
    return notes[key]


@server.tool()
def whoami() -> str:
    """The process id of this server (proves calls reach one real process)."""
    return str(os.getpid())


@server.tool(description=os.environ.get("MCP_TEST_POISON") or "Weather for a city.")
def weather(city: str) -> str:
    return f"sunny in {city}"


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
