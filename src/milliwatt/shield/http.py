"""The WAF as pure ASGI middleware: inspect each request before the app sees it, and each
response before the client does.

Request bodies are buffered (up to the WAF's body limit) because phase 2 needs them whole;
response bodies are buffered only when the rules read them (response body access on and a
MIME type they inspect), so streamed answers such as server-sent events still stream.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milliwatt.shield.auditlog import AuditLog
from milliwatt.shield.waf import (
    WAF,
    HttpRequest,
    HttpResponse,
    Interruption,
    Transaction,
    WafSettings,
)
from milliwatt.shield.waf.api import MalformedRequest

log = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")  # one char per byte, as the rules expect


def _header(headers: list[tuple[str, str]], name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""


async def _answer(
    send: Send, status: int, payload: dict[str, Any], *extra: tuple[bytes, bytes]
) -> None:
    body = json.dumps(payload).encode()
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WafMiddleware:
    """Runs every HTTP exchange through `waf`; blocked requests never reach `app`."""

    def __init__(self, app: ASGIApp, waf: WAF, audit_log_path: Path | None = None) -> None:
        self.app = app
        self.waf = waf
        self.audit = AuditLog(audit_log_path) if audit_log_path is not None else None
        ruleset = getattr(waf, "ruleset", None)
        self.body_limit: int = getattr(
            ruleset, "request_body_limit", WafSettings().request_body_limit
        )
        self.response_limit: int = getattr(
            ruleset, "response_body_limit", WafSettings().response_body_limit
        )
        types = getattr(ruleset, "response_mime_types", ("text/plain", "text/html"))
        self.response_types = frozenset(t.lower() for t in types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("0.0.0.0", 0)
        server = scope.get("server") or ("0.0.0.0", 0)
        tx = self.waf.transaction(
            client_ip=client[0], client_port=client[1] or 0,
            server_ip=server[0], server_port=server[1] or 0,
        )  # fmt: skip
        refusal: tuple[int, str] | None = None
        try:
            refusal = await self._exchange(tx, scope, receive, send)
        finally:
            self._audit(tx, refusal)

    async def _exchange(
        self, tx: Transaction, scope: Scope, receive: Receive, send: Send
    ) -> tuple[int, str] | None:
        """Serves one exchange; returns (status, reason) when the WAF itself refused it."""
        headers = [(_text(k), _text(v)) for k, v in scope["headers"]]
        body = b""
        if tx.request_body_access:
            declared = _header(headers, "content-length")
            too_large = declared.isdigit() and int(declared) > self.body_limit
            if not too_large:  # a declared size over the limit is refused unread
                body, too_large = await self._read_body(receive)
            if too_large:
                return await self._refuse(
                    send, tx, 413, "request body larger than the WAF inspects"
                )
            receive = _replay(body, receive)
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope.get("query_string", b"")
        uri = _text(raw_path) + ("?" + _text(query) if query else "")
        request = HttpRequest(scope["method"], uri, "HTTP/" + scope["http_version"], headers, body)
        try:
            verdict = tx.process_request(request)
        except MalformedRequest as exc:
            return await self._refuse(send, tx, 400, f"malformed request: {exc}")
        except Exception:
            log.exception("WAF failed on request %s; refusing it", tx.request_id)
            return await self._refuse(send, tx, 500, "the request could not be inspected")
        if verdict is not None:
            await self._block(send, tx, verdict)
            return None
        await self.app(scope, receive, _ResponseInspector(self, tx, send))
        return None

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; inspect what arrived
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_limit:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False

    async def _block(self, send: Send, tx: Transaction, verdict: Interruption) -> None:
        rid = (b"x-request-id", tx.request_id.encode())
        if verdict.action == "redirect" and verdict.redirect_url:
            location = (b"location", verdict.redirect_url.encode("latin-1", "replace"))
            status = verdict.status if 300 <= verdict.status < 400 else 302
            await _answer(send, status, {"request_id": tx.request_id}, location, rid)
            return
        payload = {
            "error": "request blocked by the web application firewall",
            "request_id": tx.request_id,
        }
        await _answer(send, verdict.status or 403, payload, rid)

    async def _refuse(
        self, send: Send, tx: Transaction, status: int, reason: str
    ) -> tuple[int, str]:
        await _answer(send, status, {"error": reason, "request_id": tx.request_id},
                      (b"x-request-id", tx.request_id.encode()))  # fmt: skip
        return status, reason

    def _audit(self, tx: Transaction, refusal: tuple[int, str] | None) -> None:
        try:
            record = tx.finish()
        except Exception:
            log.exception("WAF failed to finish transaction %s", tx.request_id)
            return
        if refusal is not None:
            record["status"], record["refused"] = refusal
        if self.audit is not None and (tx.matched_rules or record.get("status") or refusal):
            self.audit.write(record)


class _ResponseInspector:
    """The `send` the app gets: phases 3-4 run before the response leaves."""

    def __init__(self, owner: WafMiddleware, tx: Transaction, send: Send) -> None:
        self.owner, self.tx, self.send = owner, tx, send
        self.start: Message | None = None
        self.buffer: bytearray | None = None
        self.blocked = False

    async def __call__(self, message: Message) -> None:
        if self.blocked:
            return  # the app keeps talking after a block; nobody listens
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif kind == "http.response.body" and self.buffer is not None:
            await self._on_buffered_body(message)
        else:
            await self.send(message)

    async def _on_start(self, message: Message) -> None:
        headers = [(_text(k), _text(v)) for k, v in message.get("headers", [])]
        ctype = _header(headers, "content-type").split(";", 1)[0].strip().lower()
        if self.tx.response_body_access and ctype in self.owner.response_types:
            self.start, self.buffer = message, bytearray()
            return
        if await self._inspect(HttpResponse(message["status"], headers)):
            await self.send(message)

    async def _on_buffered_body(self, message: Message) -> None:
        assert self.buffer is not None and self.start is not None
        self.buffer += message.get("body", b"")
        more = message.get("more_body", False)
        if more and len(self.buffer) <= self.owner.response_limit:
            return
        start = self.start
        headers = [(_text(k), _text(v)) for k, v in start.get("headers", [])]
        seen = bytes(self.buffer[: self.owner.response_limit])  # beyond the limit: partial
        if await self._inspect(HttpResponse(start["status"], headers, seen)):
            await self.send(start)
            await self.send(
                {"type": "http.response.body", "body": bytes(self.buffer), "more_body": more}
            )
        self.buffer = None

    async def _inspect(self, response: HttpResponse) -> bool:
        """True when the response may go out; otherwise the client got an error instead."""
        try:
            verdict = self.tx.process_response(response)
        except Exception:
            log.exception("WAF failed on the response to %s; withholding it", self.tx.request_id)
            verdict = Interruption(
                status=500, rule_id=0, action="deny", message="inspection failed"
            )
        if verdict is None:
            return True
        self.blocked = True
        await self.owner._block(self.send, self.tx, verdict)
        return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the buffered body once, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def api_exclusions() -> str:
    """SecLang that keeps CRS's interpreter-specific rules off the free text of milliwatt's
    chat API (milliwatt-api.conf says which fields, and why)."""
    return resources.files("milliwatt.shield").joinpath("milliwatt-api.conf").read_text()


def load_waf(
    *,
    mode: Literal["blocking", "detection"] = "blocking",
    paranoia: int = 1,
    inbound_threshold: int = 5,
    outbound_threshold: int = 4,
    crs_dir: Path | None = None,
    extra_rules: str = "",
) -> WAF:
    """Loads the rules (`extra_rules` before CRS's); warns loudly when no CRS is found."""
    settings = WafSettings(
        mode=mode,
        paranoia=paranoia,
        inbound_threshold=inbound_threshold,
        outbound_threshold=outbound_threshold,
        extra_rules=extra_rules,
    )
    waf = WAF.load(crs_dir, settings)
    if waf.source.startswith("baseline"):
        log.warning(
            "NO OWASP CORE RULE SET FOUND: the WAF runs only its %d baseline rules. "
            "Set MILLIWATT_CRS_DIR (or shield.crs_dir) to a CRS v4 checkout, or install "
            "modsecurity-crs, for real protection.",
            waf.rule_count,
        )
    else:
        log.info(
            "WAF loaded %d rules from %s (%s mode, paranoia %d)",
            waf.rule_count, waf.source, mode, paranoia,
        )  # fmt: skip
    return waf


def build_waf_middleware(
    app: ASGIApp,
    *,
    mode: Literal["blocking", "detection"] = "blocking",
    paranoia: int = 1,
    inbound_threshold: int = 5,
    outbound_threshold: int = 4,
    crs_dir: Path | None = None,
    audit_log: Path | None = None,
    milliwatt_api: bool = True,
) -> WafMiddleware:
    """`app` behind the WAF, configured from plain values (the fields of ShieldConfig).
    `milliwatt_api` adds the exclusions for milliwatt's own chat API (api_exclusions)."""
    waf = load_waf(
        mode=mode,
        paranoia=paranoia,
        inbound_threshold=inbound_threshold,
        outbound_threshold=outbound_threshold,
        crs_dir=crs_dir,
        extra_rules=api_exclusions() if milliwatt_api else "",
    )
    return WafMiddleware(app, waf, audit_log)
