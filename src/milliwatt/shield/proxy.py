"""A reverse proxy that puts the WAF in front of any web application.

    milliwatt shield proxy --upstream http://127.0.0.1:9000 --listen 127.0.0.1:8081

uvicorn (httptools parser, uvloop) answers clients and rejects malformed HTTP with 400;
WafMiddleware inspects; a pooled aiohttp session forwards what passes to the upstream and
streams its answer back. An upstream that cannot be reached gives 502, one too slow 504.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import uvicorn
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from milliwatt.shield.http import WafMiddleware, load_waf

log = logging.getLogger(__name__)

# Connection-level headers (RFC 9110 7.6.1) belong to one hop; they are not forwarded.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
     "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}
)  # fmt: skip
_CONFIG_VARIABLE = "MILLIWATT_SHIELD_PROXY"  # hands the settings to worker processes


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


class UpstreamProxy:
    """An ASGI app that forwards each request to one upstream over pooled connections."""

    def __init__(
        self, upstream: str, *, timeout_s: float = 60.0, max_connections: int = 256
    ) -> None:
        parts = urlsplit(upstream)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=timeout_s)
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                cookie_jar=aiohttp.DummyCookieJar(),  # the client's cookies are not ours
            )  # fmt: skip
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not proxied; uvicorn answers 403 for an unanswered one
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        target = self.prefix + raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        url = URL(self.origin + target, encoded=True)  # forward the path exactly as received
        headers = _forward_headers(scope)
        body = await _request_body(receive)
        try:
            async with self._client().request(
                scope["method"], url, headers=headers, data=body or None,
                allow_redirects=False, compress=None,
            ) as upstream:  # fmt: skip
                await _relay(upstream, send)
        except TimeoutError:
            await _error(send, 504, "upstream timed out")
        except (aiohttp.ClientError, ValueError) as exc:
            await _error(send, 502, f"upstream unavailable: {type(exc).__name__}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _forward_headers(scope: Scope) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for raw_key, raw_value in scope["headers"]:
        key = raw_key.decode("latin-1")
        if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
            headers.append((key, raw_value.decode("latin-1")))
    client = scope.get("client")
    if client:
        headers.append(("X-Forwarded-For", client[0]))
    return headers


async def _request_body(receive: Receive) -> bytes:
    """The whole request body. WafMiddleware already holds it in memory for phase 2, and a
    known length keeps the upstream request free of chunked encoding."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _relay(upstream: aiohttp.ClientResponse, send: Send) -> None:
    headers = [
        (k.lower(), v)
        for k, v in upstream.raw_headers
        if k.decode("latin-1").lower() not in _HOP_BY_HOP
    ]
    await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
    async for chunk in upstream.content.iter_any():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _error(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    try:
        await send(start)
    except RuntimeError:
        return  # the upstream failed mid-answer: the response started, the connection ends
    await send({"type": "http.response.body", "body": body})


def build_proxy(settings: ProxySettings) -> WafMiddleware:
    """The proxy application: the WAF in front of the upstream."""
    waf = load_waf(
        mode=settings.mode, paranoia=settings.paranoia,
        inbound_threshold=settings.inbound_threshold,
        outbound_threshold=settings.outbound_threshold,
        crs_dir=Path(settings.crs_dir) if settings.crs_dir else None,
    )  # fmt: skip
    upstream = UpstreamProxy(
        settings.upstream, timeout_s=settings.timeout_s, max_connections=settings.max_connections
    )
    audit = Path(settings.audit_log) if settings.audit_log else None
    return WafMiddleware(upstream, waf, audit)


def proxy_from_environment() -> WafMiddleware:
    """The factory each worker process calls (uvicorn --factory)."""
    raw = os.environ.get(_CONFIG_VARIABLE)
    if not raw:
        raise RuntimeError(
            f"{_CONFIG_VARIABLE} is not set; start the proxy with `milliwatt shield proxy`"
        )
    return build_proxy(ProxySettings(**json.loads(raw)))


def parse_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:8081' or '[::1]:8081' -> (host, port), with a clear error otherwise."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def serve(settings: ProxySettings, listen: str, workers: int = 1) -> None:
    """Runs the proxy until interrupted."""
    host, port = parse_listen(listen)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")

    def run(app: WafMiddleware | str, factory: bool = False, workers: int | None = None) -> None:
        uvicorn.run(
            app, host=host, port=port, http="httptools", loop="uvloop", lifespan="on",
            access_log=False, server_header=False, log_level="warning",
            factory=factory, workers=workers,
        )  # fmt: skip

    app = build_proxy(settings)  # rule errors surface here, before any worker starts
    if workers == 1:
        run(app)
        return
    # worker processes import the app by name and read the settings from the environment
    os.environ[_CONFIG_VARIABLE] = json.dumps(asdict(settings))
    run("milliwatt.shield.proxy:proxy_from_environment", factory=True, workers=workers)
