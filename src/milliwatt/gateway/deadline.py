"""uvicorn's h11 protocol with a deadline on receiving each request.

uvicorn times idle keep-alive connections only, and stops that timer at the first byte: a
client sending half a request line, or a body a byte at a time, would hold its connection
forever. Here each request, headers and body, must arrive within the deadline; the time the
app takes to answer is not counted.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)


class RequestDeadlineProtocol(H11Protocol):
    request_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    # uvicorn's H11Protocol narrows BaseProtocol's argument to Transport; this keeps its signature
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.conn.their_state not in _RECEIVED and not self.transport.is_closing():
            self.transport.close()


def deadline_protocol(seconds: float) -> type[RequestDeadlineProtocol]:
    """The protocol class to hand uvicorn (`http=`), with its deadline in seconds."""
    return type("RequestDeadlineProtocol", (RequestDeadlineProtocol,), {"request_timeout": seconds})
