"""uvicorn's httptools protocol with two bounds of its own: a deadline on receiving each
request, and a size limit on its request line and headers.

uvicorn times idle keep-alive connections only, and stops that timer at the first byte: a
client sending half a request line, or a body a byte at a time, would hold its connection
forever. Here each request, headers and body, must arrive within the deadline; the time the
app takes to answer is not counted.

httptools (llhttp) parses in C, several times faster than h11, but sets no limit on the
request line and headers: a 50 MB header would be buffered whole. Here the bytes received
while a request's headers are unfinished are counted, and past `max_header_bytes` the
client gets 431 and the connection closes.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and reports a callback error."""


class LimitedHttpProtocol(HttpToolsProtocol):
    request_timeout: float = 10.0
    max_header_bytes: int = 32_768
    _deadline: asyncio.TimerHandle | None = None
    _unanswered = 0  # requests received whole and not yet answered
    _in_headers = True  # between a request's first byte (or none yet) and its headers' end
    _received_bytes = 0  # received while the headers are unfinished, body bytes too
    _parsed_bytes = 0  # the request line and headers the parser has handed over
    _too_large = False

    # uvicorn's protocol narrows BaseProtocol's argument to Transport; this keeps its signature
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._received_bytes += len(data)
        super().data_received(data)
        # headers still unfinished after this chunk: what is buffered counts against the limit
        if self._in_headers and self._received_bytes > self.max_header_bytes:
            self._refuse_too_large()

    # Parsed pieces count too: headers that end within one large chunk are still measured.
    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._received_bytes = self._parsed_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self._unanswered += 1  # (a request refused before its body ended waits for nothing)
        self._in_headers = True  # the next request on this connection starts counting
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
        if self._too_large:  # the parser stopped because a callback refused the size
            self._refuse_too_large()
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._parsed_bytes += size
        if self._parsed_bytes > self.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge

    def _refuse_too_large(self) -> None:
        if self.transport.is_closing():
            return
        message = f"request line and headers larger than {self.max_header_bytes} bytes"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (len(message), message.encode("ascii"))
        )
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
