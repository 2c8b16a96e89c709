"""The proxy's client to its upstream: a pool of keep-alive HTTP/1.1 connections to one
origin (upstream_http.py), at most `max_connections` at once, the most recently used first.
A pooled connection the upstream closed before answering is replaced and the request sent
again on a fresh one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from milliwatt.shield.upstream_http import (
    ResponseSink,
    Stale,
    UpstreamConnection,
    UpstreamError,
)

__all__ = ["ResponseSink", "UpstreamConnection", "UpstreamError", "UpstreamPool"]


class UpstreamPool:
    """Keep-alive connections to one host, at most `max_connections` at once."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        max_connections: int = 256,
    ) -> None:
        self.host, self.port = host, port
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if tls else None
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.max_connections = max_connections
        self.loop = asyncio.get_running_loop()
        self.idle: list[UpstreamConnection] = []
        self.count = 0  # open or opening
        self._waiters: deque[asyncio.Future[UpstreamConnection | None]] = deque()

    async def exchange(self, request: bytes, sink: ResponseSink, *, head: bool = False) -> None:
        """Sends `request` and relays the answer to `sink`; raises UpstreamError when the
        upstream cannot be reached, times out, or breaks off."""
        while True:
            conn = await self._acquire()
            try:
                await conn.exchange(request, sink, head)
                return
            except Stale:
                continue  # the pooled connection was closed under us; the next one is fresh

    async def _acquire(self) -> UpstreamConnection:
        while self.idle:
            conn = self.idle.pop()  # the most recent: the least likely to have timed out
            if conn.open:
                return conn
        if self.count >= self.max_connections:
            waiter: asyncio.Future[UpstreamConnection | None] = self.loop.create_future()
            self._waiters.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed
        self.count += 1
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: UpstreamConnection(self), self.host, self.port, ssl=self.ssl
                ),
                self.connect_timeout_s,
            )
        except TimeoutError as exc:
            self._closed_one()
            raise UpstreamError(504, "upstream timed out") from exc
        except OSError as exc:
            self._closed_one()
            raise UpstreamError(502, f"upstream unavailable: {type(exc).__name__}") from exc
        return conn

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        if not reusable:
            conn.close()  # connection_lost will forget it
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """`conn` closed: its place goes to the next waiter."""
        if conn in self.idle:
            self.idle.remove(conn)
        self._closed_one()

    def _closed_one(self) -> None:
        self.count -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()
