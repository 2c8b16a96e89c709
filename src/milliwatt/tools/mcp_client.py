"""Use the tools of any MCP server (stdio or streamable HTTP) as milliwatt tools.

A remote tool is untrusted: its output is marked untrusted, it is assumed to have side
effects unless configuration says otherwise, and its description (which the model reads)
may carry injected instructions. Each wrapped tool therefore records where it came from
and a fingerprint of its description and schema; pinning fingerprints in configuration
refuses a tool whose description changed since it was reviewed.

The agent loop is synchronous, the MCP SDK is async: each connection runs the SDK on a
private event loop thread and exposes blocking methods.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import jsonschema
import mcp_types
from mcp import Client, StdioServerParameters
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from milliwatt.shield.firewall import screen_tool_description
from milliwatt.tools.registry import Effect, Tool, ToolError
from milliwatt.tools.schema_model import ABSENT, arguments_model

_T = TypeVar("_T")  # what a job run on the session loop returns

DEFAULT_EFFECTS = {
    "http": frozenset({Effect.NETWORK, Effect.READS_UNTRUSTED, Effect.WRITES}),
    "stdio": frozenset({Effect.READS_UNTRUSTED, Effect.WRITES}),
}


class McpError(Exception):
    """The MCP server could not be reached or answered outside the protocol."""


class McpServerConfig(BaseModel):
    """One MCP server: a command line (stdio) or a URL (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")  # prefixes its tools: fs.read_file
    command: list[str] | None = None
    url: str | None = Field(default=None, pattern=r"^https?://")
    env: dict[str, str] = Field(default_factory=dict)  # stdio: added to a minimal environment
    cwd: Path | None = None
    effects: frozenset[Effect] | None = None  # default: DEFAULT_EFFECTS of the transport
    tool_effects: dict[str, frozenset[Effect]] = Field(default_factory=dict)  # per remote name
    include: list[str] | None = None  # only these remote tools
    pins: dict[str, str] = Field(default_factory=dict)  # remote name -> fingerprint
    timeout_seconds: PositiveFloat = 30.0
    max_description_chars: int = Field(1024, ge=0)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: give either command or url")
        if self.command is not None and not self.command:
            raise ValueError(f"MCP server {self.name!r}: command is empty")
        for effects in [self.effects, *self.tool_effects.values()]:
            if effects is not None and Effect.PURE in effects and len(effects) > 1:
                raise ValueError(f"MCP server {self.name!r}: pure cannot combine with others")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    def effects_for(self, remote_name: str) -> frozenset[Effect]:
        chosen = self.tool_effects.get(remote_name, self.effects)
        return chosen if chosen else DEFAULT_EFFECTS[self.transport]


@dataclass(frozen=True)
class ToolOrigin:
    """Where a wrapped tool (and the description the model reads) came from."""

    server: str
    transport: str
    target: str  # the command line or the URL
    remote_name: str
    fingerprint: str  # sha256 of the remote description and input schema


def fingerprint(remote: mcp_types.Tool) -> str:
    text = json.dumps(
        {"description": remote.description or "", "input_schema": remote.input_schema},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def origin_of(t: Tool) -> ToolOrigin | None:
    """The origin of a tool wrapped from an MCP server; None for local tools."""
    return getattr(t.fn, "origin", None)


class McpClient:
    """A live connection to one MCP server, with blocking methods.

    Use as a context manager, or call connect() and close().
    """

    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self.refused: dict[str, str] = {}  # remote tool name -> why it was not wrapped
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._jobs: asyncio.Queue[Any] | None = None
        self._session: concurrent.futures.Future[None] | None = None

    def __enter__(self) -> McpClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def target(self) -> str:
        return " ".join(self.config.command) if self.config.command else str(self.config.url)

    def connect(self) -> None:
        if self._loop is not None:
            raise McpError(f"MCP server {self.config.name!r}: already connected")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"mcp-{self.config.name}")
        thread.daemon = True
        thread.start()
        self._loop, self._thread = loop, thread
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._session = asyncio.run_coroutine_threadsafe(self._serve(ready), loop)
        try:
            ready.result(timeout=self.config.timeout_seconds)
        except Exception as exc:
            self.close()
            raise McpError(
                f"MCP server {self.config.name!r} ({self.target}): cannot connect: {_reason(exc)}"
            ) from None

    def close(self) -> None:
        loop, thread, session = self._loop, self._thread, self._session
        if loop is None or thread is None:
            return
        if self._jobs is not None and session is not None and not session.done():
            loop.call_soon_threadsafe(self._jobs.put_nowait, None)
            try:
                session.result(timeout=self.config.timeout_seconds)
            except Exception:  # the server is gone either way; closing must not raise
                session.cancel()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=self.config.timeout_seconds)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._jobs = self._session = None

    def list_remote(self) -> list[mcp_types.Tool]:
        """All tools the server lists, following pagination."""

        async def list_all(client: Client) -> list[mcp_types.Tool]:
            listed: list[mcp_types.Tool] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    return listed

        return self._run(list_all)

    def call_remote(self, name: str, arguments: Mapping[str, Any]) -> mcp_types.CallToolResult:
        return self._run(lambda client: client.call_tool(name, dict(arguments)))

    def tools(
        self, screen: Callable[[str, str], str | None] | None = screen_tool_description
    ) -> list[Tool]:
        """The server's tools as milliwatt tools named `<server>.<tool>`.

        `screen(name, description)` may return a reason to refuse a tool; by default the
        prompt firewall reads every description. Refused tools are left out and listed in
        `refused`.
        """
        wrapped = []
        self.refused.clear()
        for remote in self.list_remote():
            reason = self._refusal(remote, screen)
            if reason:
                self.refused[remote.name] = reason
            elif reason is None:
                try:
                    wrapped.append(self._wrap(remote))
                except jsonschema.SchemaError as exc:
                    self.refused[remote.name] = f"its input schema is invalid: {exc.message}"
        return wrapped

    def _refusal(
        self, remote: mcp_types.Tool, screen: Callable[[str, str], str | None] | None
    ) -> str | None:
        """None: wrap it; "": not wanted; otherwise why it is refused."""
        include = self.config.include
        if include is not None and remote.name not in include:
            return ""
        pinned = self.config.pins.get(remote.name)
        if pinned is not None and pinned != fingerprint(remote):
            return "its description or schema changed since it was pinned"
        if screen is not None:
            return screen(remote.name, remote.description or "") or None
        return None

    def _wrap(self, remote: mcp_types.Tool) -> Tool:
        origin = ToolOrigin(
            self.config.name, self.config.transport, self.target, remote.name, fingerprint(remote)
        )
        description = (remote.description or remote.title or remote.name).strip()
        limit = self.config.max_description_chars
        if len(description) > limit:
            description = description[:limit].rstrip() + " …"
        model, aliases = arguments_model(f"{self.config.name}.{remote.name}", remote.input_schema)
        return Tool(
            name=f"{self.config.name}.{remote.name}",
            description=description,
            effects=self.config.effects_for(remote.name),
            fn=_RemoteCall(self, origin, aliases),
            arguments_model=model,
        )

    def _run(self, job: Callable[[Client], Awaitable[_T]]) -> _T:
        loop, jobs, session = self._loop, self._jobs, self._session
        if loop is None or jobs is None or session is None or session.done():
            raise McpError(f"MCP server {self.config.name!r} is not connected")
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        loop.call_soon_threadsafe(jobs.put_nowait, (job, future))
        # the session may end before it takes the job: wait on both
        either: list[concurrent.futures.Future[Any]] = [future, session]
        concurrent.futures.wait(
            either,
            timeout=self.config.timeout_seconds + 5,
            return_when=concurrent.futures.FIRST_COMPLETED,
        )
        if not future.done():
            future.cancel()
            state = "closed the connection" if session.done() else "did not answer in time"
            raise McpError(f"MCP server {self.config.name!r} {state}")
        try:
            return future.result()
        except TimeoutError:
            raise McpError(f"MCP server {self.config.name!r} did not answer in time") from None

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        """Hold the SDK session in one task (its context must enter and exit in the same one)."""
        jobs: asyncio.Queue[Any] = asyncio.Queue()
        try:
            async with Client(
                self._server(), read_timeout_seconds=self.config.timeout_seconds
            ) as c:
                self._jobs = jobs
                ready.set_result(None)
                while (item := await jobs.get()) is not None:
                    job, future = item
                    if not future.set_running_or_notify_cancel():
                        continue  # the caller gave up waiting
                    try:
                        with anyio.fail_after(self.config.timeout_seconds):
                            future.set_result(await job(c))
                    except Exception as exc:
                        future.set_exception(exc)
                    except BaseException:  # the connection's task group is going down
                        future.set_exception(McpError(f"{self.config.name}: connection lost"))
                        raise
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else McpError(str(exc)))
            raise
        finally:
            while not jobs.empty():  # fail what arrived after the session ended
                item = jobs.get_nowait()
                if item is not None and item[1].set_running_or_notify_cancel():
                    item[1].set_exception(McpError(f"{self.config.name}: connection closed"))

    def _server(self) -> StdioServerParameters | str:
        if self.config.command is not None:
            cwd = self.config.cwd
            command, *args = self.config.command
            return StdioServerParameters(command=command, args=args, env=self.config.env, cwd=cwd)
        return str(self.config.url)


class _RemoteCall:
    """The function behind a wrapped tool: forwards validated arguments to the server."""

    def __init__(self, client: McpClient, origin: ToolOrigin, aliases: dict[str, str]) -> None:
        self.client, self.origin, self._aliases = client, origin, aliases

    def __call__(self, **fields: Any) -> Any:
        arguments = {self._aliases[k]: v for k, v in fields.items() if v is not ABSENT}
        try:
            result = self.client.call_remote(self.origin.remote_name, arguments)
        except McpError as exc:
            raise ToolError(str(exc)) from None
        except Exception as exc:  # a protocol error from the server: report, don't crash
            raise ToolError(f"{self.origin.server}.{self.origin.remote_name}: {exc}") from None
        text = "\n".join(_content_text(block) for block in result.content)
        if result.is_error:
            raise ToolError(text or "the remote tool failed")
        # the text blocks are what the server meant for a model; structured data only without
        if result.content or result.structured_content is None:
            return text
        return result.structured_content


def _content_text(block: Any) -> str:
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return f"[{block.type}: {block.mime_type}]"
    return f"[{getattr(block, 'type', 'content')}]"


def _reason(exc: BaseException) -> str:
    """The innermost message of an exception (task groups wrap them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
