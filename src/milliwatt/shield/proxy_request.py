"""A client's request as the proxy holds it, and the request it sends the upstream for it."""

from __future__ import annotations

from milliwatt.shield.proxy_relay import HOP_BY_HOP, connection_tokens

# not forwarded as received: the proxy sets its own length, answers Expect itself (it has the
# whole body) and extends X-Forwarded-For
_DROPPED = HOP_BY_HOP | {b"content-length", b"expect", b"x-forwarded-for"}


class ProxyRequest:
    """One parsed client request, as the proxy queues it."""

    __slots__ = ("body", "framed", "headers", "keep_alive", "malformed", "method", "refuse",
                 "target", "too_large", "version", "websocket")  # fmt: skip

    def __init__(self, method: bytes, target: bytes, version: str) -> None:
        self.method, self.target, self.version = method, target, version
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.keep_alive = version != "1.0"
        self.refuse: tuple[int, str] | None = None  # answered by the proxy without inspection
        self.websocket = False
        self.framed = False  # a body was declared (Content-Length or Transfer-Encoding)
        self.malformed = False  # not HTTP/1.x: 400, before any inspection
        self.too_large = False  # ... or its request line and headers past the limit: 431


def upstream_request(
    request: ProxyRequest, prefix: bytes, authority: bytes, client_ip: str
) -> bytes:
    """The request for the upstream: the target byte for byte, hop-by-hop headers out,
    the client's address added to X-Forwarded-For, the body with its length."""
    out = [request.method, b" ", prefix, request.target, b" HTTP/1.1\r\n"]
    named = connection_tokens(request.headers)
    forwarded: list[bytes] = []
    has_host = False
    for name, value in request.headers:
        lowered = name.lower()
        if lowered in _DROPPED or lowered in named:
            if lowered == b"x-forwarded-for":
                forwarded.append(value)
            continue
        has_host = has_host or lowered == b"host"
        out += (name, b": ", value, b"\r\n")
    if not has_host:
        out += (b"Host: ", authority, b"\r\n")
    forwarded.append(client_ip.encode())
    out += (b"X-Forwarded-For: ", b", ".join(forwarded), b"\r\n")
    if request.body or request.framed:
        out.append(b"Content-Length: %d\r\n" % len(request.body))
    out += (b"\r\n", request.body)
    return b"".join(out)
