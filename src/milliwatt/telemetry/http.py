"""Telemetry for every HTTP exchange: the outermost ASGI middleware, and the thread that
turns finished requests into spans, metrics, ledger rows and log lines.

The middleware opens the request's record before the guard and the WAF see a byte, so
a request they refuse is counted too, and closes it when the response's last byte is
sent (a streamed answer included). On the request's path that costs a few clock reads
and a queue hand-off; the rest runs on the telemetry thread. Chat requests and refusals
are counted; the console's own traffic is not.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milliwatt.telemetry import logs, tracing
from milliwatt.telemetry.ledger import LedgerEntry
from milliwatt.telemetry.metrics import Metrics
from milliwatt.telemetry.records import RequestRecord, RequestTiming, current_request
from milliwatt.telemetry.store import RequestStore

CHAT_PATH = "/v1/chat/completions"
# refused before the API answered: not authenticated, forbidden, too large, not JSON,
# a Host that is not ours, too many headers
_REFUSALS = frozenset({401, 403, 413, 415, 421, 431})
_STOP = object()
log = logging.getLogger(__name__)


class Telemetry:
    """What a finished request feeds: spans, metrics, the request ledger and the log."""

    def __init__(
        self, metrics: Metrics | None, store: RequestStore | None, *, log: bool = True
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.log = log
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()

    def finish(self, record: RequestRecord) -> None:
        """Hand a finished request over (cheap: the work is done on the telemetry thread)."""
        if record.route is None:
            record.route = classify(record)
        if record.route is not None:
            self._queue.put(record)

    def flush(self) -> None:
        """Return once every request finished so far is in the metrics and the ledger."""
        if self._thread.is_alive():
            self._queue.join()
        if self.store is not None:
            self.store.flush()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(10)
        logs.flush()
        if self.store is not None:
            self.store.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, RequestRecord)
                self._publish(item)
            except Exception:  # telemetry must never take the server down
                log.exception("telemetry: a request's figures were lost")
            finally:
                if self._queue.empty():
                    logs.flush()  # a burst of log lines, written at once
                self._queue.task_done()

    def _publish(self, record: RequestRecord) -> None:
        tracing.export_request(record)  # first: it sets the trace id the others carry
        if self.metrics is not None:
            self.metrics.observe(record)
        if self.store is not None:
            self.store.add(record)
        if self.log:
            logs.log_request(record)


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
        if tracing.enabled():
            record.trace = RequestTiming(time.time_ns(), _propagated(scope["headers"]))
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

        try:
            await self.app(scope, receive, observed_send)
        except BaseException:
            record.status = record.status or 500
            raise
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000
            if record.trace is not None:
                record.trace.ended_ns = record.trace.started_ns + int(record.duration_ms * 1e6)
            current_request.reset(token)
            self.telemetry.finish(record)


def _propagated(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The caller's trace context headers (W3C traceparent, tracestate)."""
    found: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key in tracing.PROPAGATED:
            found[key] = value.decode("latin-1")
    return found


def note_waf_verdict(
    blocked: bool, rule_ids: list[str], request_id: str, started_ns: int, ended_ns: int
) -> None:
    """The WAF's verdict on the current request, and when it was reached. The WAF's request
    id becomes the record's, so the audit log, the response and the ledger agree."""
    record = current_request.get()
    if record is None:
        return
    record.id = request_id
    record.waf_rules = rule_ids
    record.waf_blocked = blocked
    if record.trace is not None:
        record.trace.waf = (started_ns, ended_ns)


def note_steps(steps: list[LedgerEntry]) -> None:
    """The ledger's steps of the current request, for its trace."""
    record = current_request.get()
    if record is not None and record.trace is not None:
        record.trace.steps = list(steps)
