"""A bound on a request's line and headers while httptools parses them.

httptools (llhttp) sets no limit of its own: a 50 MB header would be buffered whole. Both
HTTP servers (the gateway's uvicorn protocol and the WAF proxy) count with `HeaderLimit`:
the bytes received while a request's headers are unfinished, checked after each read, and
the request line and headers the parser hands over, checked as they come (headers that end
within one large read are measured too; body bytes in the same read are not).
"""

from __future__ import annotations


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and reports a callback error."""


class HeaderLimit:
    """One connection's count; a request starts counting at its first byte."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_headers = True  # from a request's first byte (or none yet) to its headers' end
        self.exceeded = False  # a parser callback refused the size
        self._received = 0
        self._parsed = 0

    def received(self, size: int) -> None:
        """Before a read is fed to the parser."""
        if self.in_headers:
            self._received += size

    def overflowing(self) -> bool:
        """After a read was fed: headers still unfinished, and past the limit already."""
        return self.in_headers and self._received > self.limit

    def parsed(self, size: int) -> None:
        """From on_url / on_header; raises HeadersTooLarge past the limit."""
        self._parsed += size
        if self._parsed > self.limit:
            self.exceeded = True
            raise HeadersTooLarge

    def headers_complete(self) -> None:
        self.in_headers = False
        self._received = self._parsed = 0

    def message_complete(self) -> None:
        self.in_headers = True  # the next request on this connection starts counting


def too_large_answer(limit: int) -> bytes:
    """431, and the connection closes: what follows cannot be parsed as a request."""
    message = f"request line and headers larger than {limit} bytes".encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(message), message)
    )
