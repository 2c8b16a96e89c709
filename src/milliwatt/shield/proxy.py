"""A reverse proxy that puts the WAF in front of any web application.

    milliwatt shield proxy --upstream http://127.0.0.1:9000 --listen 127.0.0.1:8081

An asyncio server on uvloop parses requests with httptools (malformed HTTP gets 400), runs
each through a WAF transaction (proxy_server.py), forwards what passes over pooled keep-alive
connections (upstream.py) and streams the answer back through phases 3-4 (proxy_relay.py).
An upstream that cannot be reached gives 502, one too slow 504. `--workers N` forks N
processes that share the listening socket; the rules load once, before the fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from milliwatt.shield.auditlog import AuditLog
from milliwatt.shield.http import load_waf
from milliwatt.shield.proxy_relay import ResponseRules
from milliwatt.shield.proxy_server import (
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_S,
    ClientConnection,
    ProxyContext,
)
from milliwatt.shield.upstream import UpstreamPool
from milliwatt.shield.waf import WAF

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxySettings:
    upstream: str
    mode: Literal["blocking", "detection"] = "blocking"
    paranoia: int = 1
    inbound_threshold: int = 5
    outbound_threshold: int = 4
    crs_dir: str | None = None
    audit_log: str | None = None
    timeout_s: float = 60.0
    max_connections: int = 256  # to the upstream, per worker

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {self.upstream!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"upstream must not carry a query or fragment: {self.upstream!r}")


class ProxyServer:
    """One worker's server: the listening socket, its client connections, the upstream pool."""

    def __init__(self, ctx: ProxyContext, server: asyncio.Server) -> None:
        self.ctx, self.server = ctx, server
        self.connections: set[ClientConnection] = set()
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    @classmethod
    async def start(
        cls, waf: WAF, settings: ProxySettings, *, sock: socket.socket | None = None,
        host: str = "127.0.0.1", port: int = 0,
    ) -> ProxyServer:  # fmt: skip
        """Serves on `sock`, or on a new socket bound to host:port."""
        parts = urlsplit(settings.upstream)
        tls = parts.scheme == "https"
        assert parts.hostname is not None
        ruleset = waf.ruleset
        ctx = ProxyContext(
            waf=waf,
            pool=UpstreamPool(
                parts.hostname,
                parts.port or (443 if tls else 80),
                tls=tls,
                timeout_s=settings.timeout_s,
                max_connections=settings.max_connections,
            ),
            prefix=parts.path.rstrip("/").encode("latin-1"),
            authority=parts.netloc.rpartition("@")[2].encode("latin-1"),
            audit=AuditLog(Path(settings.audit_log)) if settings.audit_log else None,
            response_rules=ResponseRules(
                frozenset(t.lower() for t in ruleset.response_mime_types),
                ruleset.response_body_limit,
            ),
            body_limit=ruleset.request_body_limit,
        )
        connections: set[ClientConnection] = set()
        loop = asyncio.get_running_loop()
        factory: Callable[[], ClientConnection] = lambda: ClientConnection(ctx, connections)  # noqa: E731
        if sock is not None:
            server = await loop.create_server(factory, sock=sock, backlog=2048)
        else:
            server = await loop.create_server(factory, host, port, backlog=2048)
        proxy = cls(ctx, server)
        proxy.connections = connections
        return proxy

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    def _sweep(self) -> None:
        """Closes client connections idle past the keep-alive time, and those whose request
        headers have been arriving for longer than HEADER_TIMEOUT_S."""
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - KEEP_ALIVE_S
        slow = loop.time() - HEADER_TIMEOUT_S
        for conn in list(self.connections):
            started = conn.headers_since
            if not conn.busy and (
                conn.idle_since < cutoff or (started is not None and started < slow)
            ):
                conn.closed = True
                conn.transport.close()
        self._sweeper = loop.call_later(1.0, self._sweep)

    async def close(self) -> None:
        self._sweeper.cancel()
        self.server.close()
        for conn in list(self.connections):
            conn.transport.close()
        await self.server.wait_closed()
        self.ctx.pool.close()
        if self.ctx.audit is not None:
            self.ctx.audit.close()


def load_proxy_waf(settings: ProxySettings) -> WAF:
    return load_waf(
        mode=settings.mode, paranoia=settings.paranoia,
        inbound_threshold=settings.inbound_threshold,
        outbound_threshold=settings.outbound_threshold,
        crs_dir=Path(settings.crs_dir) if settings.crs_dir else None,
    )  # fmt: skip


def parse_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:8081' or '[::1]:8081' -> (host, port), with a clear error otherwise."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def serve(settings: ProxySettings, listen: str, workers: int = 1) -> None:
    """Runs the proxy until interrupted (SIGINT, SIGTERM)."""
    host, port = parse_listen(listen)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")
    waf = load_proxy_waf(settings)  # rule errors surface here, before any worker starts
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    if workers == 1:
        _run_worker(waf, settings, sock)
        return
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: serves until told to stop, never returns here
            code = 0
            try:
                _run_worker(waf, settings, sock)
            except BaseException:
                log.exception("proxy worker failed")
                code = 1
            os._exit(code)
        children.append(pid)
    sock.close()

    def stop_workers(signum: int, frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_workers)
    signal.signal(signal.SIGINT, stop_workers)
    for pid in children:
        os.waitpid(pid, 0)


def _run_worker(waf: WAF, settings: ProxySettings, sock: socket.socket) -> None:
    async def main() -> None:
        proxy = await ProxyServer.start(waf, settings, sock=sock)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await proxy.close()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows: the standard loop
        return None
    return uvloop.new_event_loop
