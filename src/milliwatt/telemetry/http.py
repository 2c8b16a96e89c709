"""Telemetry for every HTTP exchange: the outermost ASGI middleware.

It opens the request's record and span before the guard and the WAF see a byte, so a
request they refuse is counted too, and closes both when the response's last byte is
sent (a streamed answer included). Chat requests and refusals then reach the metrics,
the request ledger and the JSON log line; the console's own traffic does not.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milliwatt.telemetry import logs, tracing
from milliwatt.telemetry.metrics import Metrics
from milliwatt.telemetry.records import RequestRecord, current_request
from milliwatt.telemetry.store import RequestStore

CHAT_PATH = "/v1/chat/completions"
# refused before the API answered: not authenticated, forbidden, too large, not JSON,
# a Host that is not ours, too many headers
_REFUSALS = frozenset({401, 403, 413, 415, 421, 431})


class Telemetry:
    """What a finished request feeds: metrics, the request ledger and the log."""

    def __init__(
        self, metrics: Metrics | None, store: RequestStore | None, *, log: bool = True
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.log = log

    def finish(self, record: RequestRecord) -> None:
        if record.route is None:
            record.route = classify(record)
        if record.route is None:
            return
        if self.metrics is not None:
            self.metrics.observe(record)
        if self.store is not None:
            self.store.add(record)
        if self.log:
            logs.log_request(record)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def classify(record: RequestRecord) -> str | None:
    """The route of a request the API did not answer, or None when it is not one to count
    (the console's and the health probe's own traffic)."""
    if record.waf_blocked:
        if "waf" not in record.denials:
            record.denials.append("waf")
        return "refused"
    if not record.path.startswith("/v1/"):
        return None
    if record.status in _REFUSALS:
        return "refused"
    if record.path == CHAT_PATH:
        # a stream's status is sent before its answer: without a result the client left
        return "cancelled" if record.status in (200, 499) else "error"
    return None


class TelemetryMiddleware:
    def __init__(
        self, app: ASGIApp, telemetry: Telemetry, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(uuid.uuid4().hex, self.clock(), scope["method"], scope["path"])
        started = time.perf_counter()
        token = current_request.set(record)

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", record.id.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            with tracing.request_span(record.method, record.path, headers) as span:
                record.trace_id = tracing.trace_id(span)
                try:
                    await self.app(scope, receive, observed_send)
                except BaseException:
                    record.status = record.status or 500
                    raise
                finally:
                    if span is not None:
                        span.set_attribute("http.response.status_code", record.status)
                        if record.route:
                            span.set_attribute("milliwatt.route", record.route)
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000
            current_request.reset(token)
            self.telemetry.finish(record)


def note_waf_verdict(
    blocked: bool, rule_ids: list[str], current: object = None, request_id: str | None = None
) -> None:
    """The WAF's verdict on the current request: on its record and on the WAF's span. The
    WAF's request id becomes the record's, so the audit log and the ledger agree."""
    record = current_request.get()
    if record is not None:
        record.id = request_id or record.id
        record.waf_rules = rule_ids
        record.waf_blocked = blocked
    if current is not None:
        span = current
        span.set_attribute("milliwatt.waf.blocked", blocked)  # type: ignore[attr-defined]
        if rule_ids:
            span.set_attribute("milliwatt.waf.rules", rule_ids)  # type: ignore[attr-defined]
