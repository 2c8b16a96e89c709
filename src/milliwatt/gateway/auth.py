"""Who may call the server: API keys, operator-only paths, and limits, before the API or the
WAF work on a request.

Once any API key exists (revoked ones included: revoking the last key does not open the
server), every path but PUBLIC_PATHS / PUBLIC_PREFIXES needs `Authorization: Bearer mw_...`;
OPERATOR_PREFIXES need a key created with `--admin`. With no key, requests come from the
local machine (`serve` binds loopback only unless `--no-auth`); operator paths then answer
loopback clients only. The principal reaches the API as `request.state.principal`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milliwatt.access.keys import LOCAL, AuthError, KeyStore, Principal
from milliwatt.access.limits import LimiterUnavailable
from milliwatt.access.quota import Quota
from milliwatt.errors import RateLimitedError, ServiceUnavailableError
from milliwatt.gateway.errors import api_error
from milliwatt.gateway.schemas import ApiError
from milliwatt.shield.audit_trail import Trail

log = logging.getLogger(__name__)

# pages and probes that hold no data: served to anyone
PUBLIC_PATHS = frozenset({"/healthz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
# the operator's views and controls: an admin key (or, with no keys, a loopback client)
OPERATOR_PREFIXES = ("/console", "/metrics", "/admin")
# what counts against a key's rate limits and budgets
LIMITED_PREFIXES = ("/v1/",)
MAX_KEY_CHARS = 200  # a key is 57; anything much longer is refused unparsed
_RECHECK_SECONDS = 1.0  # how often a server without keys looks whether one was created
_REFUSAL_RECORD_EVERY = 1.0  # per client address: a flood of bad keys must not flood the trail


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_operator_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in OPERATOR_PREFIXES)


def _loopback(scope: Scope) -> bool:
    client = scope.get("client")
    try:
        return client is not None and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


class AccessMiddleware:
    """Pure ASGI middleware: authenticates, authorises operator paths, applies limits."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyStore,
        quota: Quota,
        trail: Trail | None = None,
        *,
        no_auth: bool = False,
    ) -> None:
        self.app = app
        self.keys = keys
        self.quota = quota
        self.trail = trail
        self.no_auth = no_auth
        self._keys_exist = False
        self._checked_at = 0.0
        self._refusals: dict[str, tuple[float, int]] = {}

    def keys_required(self) -> bool:
        if self.no_auth or self._keys_exist:
            return not self.no_auth
        now = time.monotonic()
        if now - self._checked_at >= _RECHECK_SECONDS:
            self._keys_exist = self.keys.has_keys()
            self._checked_at = now
        return self._keys_exist

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        admission = None
        try:
            principal = self.principal(scope)
            path = scope["path"]
            if is_operator_path(path) and not (principal.admin and self._operator_ok(scope)):
                raise ApiError(
                    403, f"{path} needs an operator's key (`milliwatt keys create --admin`)",
                    code="operator_key_required",
                )  # fmt: skip
            if path.startswith(LIMITED_PREFIXES):
                admission = self.quota.admit(principal)
        except ApiError as exc:
            await _refuse(exc, scope, receive, send)
            return
        except (RateLimitedError, ServiceUnavailableError) as exc:
            if isinstance(exc, ServiceUnavailableError):
                log.error("%s", exc)
            await _refuse(api_error(exc), scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["quota"] = self.quota
        state["access"] = self
        headers = admission.headers if admission is not None else {}
        try:
            await self.app(scope, receive, _with_headers(send, headers) if headers else send)
        finally:
            if admission is not None:
                try:
                    self.quota.release(admission)
                except LimiterUnavailable as exc:  # the lease expires by itself
                    log.error("%s", exc)

    def _operator_ok(self, scope: Scope) -> bool:
        return self.keys_required() or _loopback(scope)

    def principal(self, scope: Scope) -> Principal:
        if not self.keys_required():
            return LOCAL
        key = _bearer(scope)
        try:
            if key is None:
                raise AuthError(
                    "no API key: send it as `Authorization: Bearer mw_...`", "missing_api_key"
                )
            if len(key) > MAX_KEY_CHARS:
                raise AuthError("the API key is malformed (far too long)")
            principal = self.keys.authenticate(key)
        except AuthError as exc:
            self._record_refusal(scope, key, exc)
            raise api_error(exc) from None
        if self.trail is not None:
            self.trail.record(
                "key.used",
                {"key_id": principal.key_id, "tenant": principal.tenant,
                 "path": scope["path"], "client": (scope.get("client") or ("?",))[0]},
            )  # fmt: skip
        return principal

    def still_valid(self, key_id: str | None) -> str | None:
        """None while the key may go on; else why not (a stream checks between chunks)."""
        if key_id is None:
            return None
        info = self.keys.get(key_id)
        if info is None or info.state() != "active":
            return f"the API key was {info.state() if info else 'removed'} during the request"
        return None

    def _record_refusal(self, scope: Scope, key: str | None, exc: AuthError) -> None:
        if self.trail is None:
            return
        client = (scope.get("client") or ("?",))[0]
        now = time.monotonic()
        last, suppressed = self._refusals.get(client, (0.0, 0))
        if now - last < _REFUSAL_RECORD_EVERY:
            self._refusals[client] = (last, suppressed + 1)
            return
        if len(self._refusals) > 10_000:
            self._refusals.clear()
        self._refusals[client] = (now, 0)
        key_id = key[3:13] if key and key.startswith("mw_") else None
        self.trail.record(
            "key.refused",
            {"client": client, "path": scope["path"], "code": exc.code, "key_id": key_id,
             "suppressed_before": suppressed},
        )  # fmt: skip


def principal_of(state: Mapping[str, object]) -> Principal:
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else LOCAL


def tenant_prefix(request: Request) -> str:
    """Every stored name of the caller's tenant starts with this ("" with no API keys)."""
    return principal_of(request.scope.get("state", {})).scope("")


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = bytes(value).decode("latin-1")
            scheme, _, credentials = text.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return sending


async def _refuse(exc: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    if exc.status == 401:
        exc.headers.setdefault("WWW-Authenticate", 'Bearer realm="milliwatt"')
    await exc.response()(scope, receive, send)
