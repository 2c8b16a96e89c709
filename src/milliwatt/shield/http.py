"""The WAF as pure ASGI middleware: inspect each request before the app sees it, and each
response before the client does.

Request bodies are buffered (up to the WAF's body limit) because phase 2 needs them whole;
response bodies are buffered only when the rules read them (response body access on and a
MIME type they inspect), so streamed answers such as server-sent events still stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milliwatt.shield.auditlog import AuditLog
from milliwatt.shield.responses import (
    ResponseInspector,
    answer,
    block,
    header,
    refusal_answer,
    text,
)
from milliwatt.shield.waf import (
    WAF,
    HttpRequest,
    Interruption,
    Transaction,
    WafSettings,
)
from milliwatt.shield.waf.api import ARGUMENTS_LIMIT, MalformedRequest
from milliwatt.telemetry.http import note_waf_verdict

log = logging.getLogger(__name__)

# bodies larger than this are inspected in a worker thread: the rules' work grows with the
# body, and the event loop must go on serving other clients (health probes included)
INSPECT_INLINE_BYTES = 16_384


class WafMiddleware:
    """Runs every HTTP exchange through `waf`; blocked requests never reach `app`."""

    def __init__(
        self,
        app: ASGIApp,
        waf: WAF,
        audit_log_path: Path | None = None,
        on_block: Callable[[str, Mapping[str, object]], None] | None = None,
    ) -> None:
        """`on_block(event, fields)` hears of each refused request (the audit trail's
        `record`); the JSON-lines log keeps the full detail."""
        self.app = app
        self.waf = waf
        self.audit = AuditLog(audit_log_path) if audit_log_path is not None else None
        self.on_block = on_block
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
        if scope["type"] not in ("http", "websocket"):
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
            if scope["type"] == "websocket":
                await self._handshake(tx, scope, receive, send)
            else:
                refusal = await self._exchange(tx, scope, receive, send)
        finally:
            self._audit(tx, refusal)

    async def _handshake(self, tx: Transaction, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket upgrade is a GET request: phases 1-2 decide whether it is accepted.
        The messages that follow are not HTTP and are not inspected (nor by ModSecurity)."""
        request = HttpRequest("GET", _uri(scope), "HTTP/" + scope.get("http_version", "1.1"),
                              [(text(k), text(v)) for k, v in scope["headers"]])  # fmt: skip
        verdict: Interruption | Exception | None
        try:
            verdict = tx.process_request(request)
        except Exception as exc:
            if not isinstance(exc, MalformedRequest):
                log.exception("WAF failed on handshake %s; refusing it", tx.request_id)
            verdict = exc
        if verdict is not None:
            await send({"type": "websocket.close", "code": 1008})  # the server answers 403
            return
        await self.app(scope, receive, send)

    async def _exchange(
        self, tx: Transaction, scope: Scope, receive: Receive, send: Send
    ) -> tuple[int, str] | None:
        """Serves one exchange; returns (status, reason) when the WAF itself refused it."""
        headers = [(text(k), text(v)) for k, v in scope["headers"]]
        body = b""
        if tx.request_body_access:
            declared = header(headers, "content-length")
            too_large = declared.isdigit() and int(declared) > self.body_limit
            if not too_large:  # a declared size over the limit is refused unread
                body, too_large = await self._read_body(receive)
            if too_large:
                return await self._refuse(
                    send, tx, 413, "request body larger than the WAF inspects"
                )
            receive = replay_body(body, receive)
        request = HttpRequest(
            scope["method"], _uri(scope), "HTTP/" + scope["http_version"], headers, body
        )
        started_ns = time.time_ns()
        try:
            if len(body) > INSPECT_INLINE_BYTES:
                verdict = await anyio.to_thread.run_sync(tx.process_request, request)
            else:
                verdict = tx.process_request(request)
        except MalformedRequest as exc:
            return await self._refuse(send, tx, 400, f"malformed request: {exc}")
        except Exception:
            log.exception("WAF failed on request %s; refusing it", tx.request_id)
            return await self._refuse(send, tx, 500, "the request could not be inspected")
        rule_ids = [str(m.id) for m in tx.matched_rules]
        note_waf_verdict(verdict is not None, rule_ids, tx.request_id, started_ns, time.time_ns())
        if verdict is not None:
            await block(send, tx, verdict)
            return None
        await self.app(
            scope,
            receive,
            ResponseInspector(
                tx, send, body_types=self.response_types, body_limit=self.response_limit
            ),
        )
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

    async def _refuse(
        self, send: Send, tx: Transaction, status: int, reason: str
    ) -> tuple[int, str]:
        _, payload, extra = refusal_answer(tx, status, reason)
        await answer(send, status, payload, *extra)
        return status, reason

    def _audit(self, tx: Transaction, refusal: tuple[int, str] | None) -> None:
        audit_transaction(tx, refusal, self.audit, self.on_block)


def audit_transaction(
    tx: Transaction,
    refusal: tuple[int, str] | None,
    audit: AuditLog | None,
    on_block: Callable[[str, Mapping[str, object]], None] | None = None,
) -> None:
    """Phase 5, then the audit record as the audit engine asks; `on_block` hears of refusals."""
    try:
        record = tx.finish()
    except Exception:
        log.exception("WAF failed to finish transaction %s", tx.request_id)
        return
    if refusal is not None:
        record["status"], record["refused"] = refusal
    # SecAuditEngine / ctl:auditEngine: "on" logs every transaction, "relevantonly" those
    # that matched or were refused, "off" none
    engine = record.get("audit_engine", "relevantonly")
    relevant = bool(tx.matched_rules or record.get("status") or refusal)
    if audit is not None and (engine == "on" or (engine == "relevantonly" and relevant)):
        audit.write(record)
    interruption = tx.interruption
    if on_block is not None and (refusal is not None or interruption is not None):
        fields: dict[str, object] = {"request_id": tx.request_id, "uri": record.get("uri")}
        if interruption is not None:
            fields |= {"status": interruption.status, "rule_id": interruption.rule_id,
                       "rules": [m.id for m in tx.matched_rules]}  # fmt: skip
        else:
            assert refusal is not None
            fields |= {"status": refusal[0], "reason": refusal[1]}
        try:
            on_block("waf.blocked", fields)
        except Exception:
            log.exception("WAF block listener failed on %s", tx.request_id)


def _uri(scope: Scope) -> str:
    """The request target as the client sent it: raw path, then the query string."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string", b"")
    return text(raw_path) + ("?" + text(query) if query else "")


def replay_body(body: bytes, receive: Receive) -> Receive:
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
    rules: Literal["crs", "baseline"] = "crs",
    arguments_limit: int = ARGUMENTS_LIMIT,
) -> WAF:
    """Loads the rules (`extra_rules` before CRS's)."""
    settings = WafSettings(
        mode=mode,
        rules=rules,
        paranoia=paranoia,
        inbound_threshold=inbound_threshold,
        outbound_threshold=outbound_threshold,
        extra_rules=extra_rules,
        arguments_limit=arguments_limit,
    )
    waf = WAF.load(crs_dir, settings)
    # the engine itself warns loudly when the packaged CRS is missing
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
    rules: Literal["crs", "baseline"] = "crs",
    arguments_limit: int = ARGUMENTS_LIMIT,
    on_block: Callable[[str, Mapping[str, object]], None] | None = None,
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
        rules=rules,
        arguments_limit=arguments_limit,
    )
    return WafMiddleware(app, waf, audit_log, on_block)
