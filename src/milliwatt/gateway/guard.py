"""Checks every HTTP request passes before the WAF or the API read its body.

Header count, Host (DNS rebinding) and Origin (CSRF from a browser page), JSON-only bodies
and the body's size. Host and Origin are judged by the MCP SDK's own check, with the same
allow-list `milliwatt mcp serve` uses, so the two servers cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from milliwatt.config import ServerConfig
from milliwatt.gateway.schemas import ApiError
from milliwatt.shield.http import replay_body

_LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def transport_security(
    host: str, extra_hosts: Sequence[str] = (), extra_origins: Sequence[str] = ()
) -> TransportSecuritySettings:
    """Localhost, the address the server listens on and the configured names, on any port."""
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = [*_LOCAL_NAMES, *([] if host in _ANY_ADDRESS else [bracketed]), *extra_hosts]
    hosts = [form for name in dict.fromkeys(names) for form in (name, f"{name}:*")]
    origins = [
        form
        for name in dict.fromkeys(names)
        for scheme in ("http", "https")
        for form in (f"{scheme}://{name}", f"{scheme}://{name}:*")
    ]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[*origins, *extra_origins],
    )


class RequestGuard:
    """Pure ASGI middleware: refuses what breaks `limits`, buffers the body it lets through."""

    def __init__(
        self,
        app: ASGIApp,
        limits: ServerConfig,
        *,
        host: str,
        body_checks: Mapping[str, Callable[[bytes], None]] | None = None,
    ) -> None:
        """`body_checks`: per path, a check of the whole body that raises ApiError."""
        self.app = app
        self.limits = limits
        self.body_checks = body_checks or {}
        security = transport_security(host, limits.allowed_hosts, limits.allowed_origins)
        self.security = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            await self._check_headers(scope)
            if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
                receive = await self._read_body(scope, receive)
        except ApiError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await exc.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _check_headers(self, scope: Scope) -> None:
        if len(scope["headers"]) > self.limits.max_headers:
            raise ApiError(431, f"more than {self.limits.max_headers} headers", code="too_large")
        request = Request(scope)
        refused = await self.security.validate_request(request, is_post=False)
        if refused is not None:  # 421: Host not ours; 403: a page of another origin
            reason = bytes(refused.body).decode()
            raise ApiError(refused.status_code, reason, code="forbidden")
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                # forms are what a page of another origin may post without asking (CSRF)
                raise ApiError(415, "the body must be application/json", code="unsupported_media")

    async def _read_body(self, scope: Scope, receive: Receive) -> Receive:
        """The whole body, at most max_body_bytes of it, read before anyone parses it."""
        limit = self.limits.max_body_bytes
        declared = Request(scope).headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees the disconnect next
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        check = self.body_checks.get(scope["path"])
        if check is not None:
            check(body)
        return replay_body(body, receive)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the body is larger than {limit} bytes", code="too_large")
