"""uvicorn's httptools protocol with two bounds of its own: a deadline on receiving each
request, and a size limit on its request line and headers.

uvicorn times idle keep-alive connections only, and stops that timer at the first byte: a
client sending half a request line, or a body a byte at a time, would hold its connection
forever. Here each request, headers and body, must arrive within the deadline; the time the
app takes to answer is not counted.

httptools (llhttp) parses in C, several times faster than h11, but sets no limit on the
request line and headers: past `max_header_bytes` (counted by shield.header_limit) the client
gets 431 and the connection closes.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from milliwatt.shield.header_limit import HeaderLimit, too_large_answer


class LimitedHttpProtocol(HttpToolsProtocol):
    request_timeout: float = 10.0
    max_header_bytes: int = 32_768
    _deadline: asyncio.TimerHandle | None = None
    _unanswered = 0  # requests received whole and not yet answered
    _limit: HeaderLimit

    # uvicorn's protocol narrows BaseProtocol's argument to Transport; this keeps its signature
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._limit = HeaderLimit(self.max_header_bytes)
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._limit.received(len(data))
        super().data_received(data)
        if self._limit.overflowing():
            self._refuse_too_large()

    def on_url(self, url: bytes) -> None:
        self._limit.parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._limit.parsed(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._limit.headers_complete()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self._unanswered += 1  # (a request refused before its body ended waits for nothing)
        self._limit.message_complete()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._unanswered = max(0, self._unanswered - 1)
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        if self._limit.exceeded:  # the parser stopped because a callback refused the size
            self._refuse_too_large()
        else:
            super().send_400_response(msg)

    def _refuse_too_large(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(too_large_answer(self.max_header_bytes))
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self._unanswered and not self.transport.is_closing():
            self.transport.close()


def limited_protocol(request_timeout: float, max_header_bytes: int) -> type[LimitedHttpProtocol]:
    """The protocol class to hand uvicorn (`http=`), with its deadline in seconds and its
    limit on the request line and headers in bytes."""
    bounds = {"request_timeout": request_timeout, "max_header_bytes": max_header_bytes}
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), bounds)
