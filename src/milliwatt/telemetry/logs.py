"""Structured logs: one JSON object per line, for log shippers (Loki, Elasticsearch, ...).

Every finished API request is logged with its id, trace id, route, status and durations;
other milliwatt log records (warnings of the WAF, of the workers) take the same shape.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from milliwatt.telemetry.records import RequestRecord

REQUEST_LOGGER = "milliwatt.requests"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _JsonHandler(logging.StreamHandler[TextIO]):
    """Request lines are written as they come and flushed when the telemetry thread has
    nothing left to do (one write for a burst, not one per request); anything else, a
    warning say, is flushed at once."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            if record.name != REQUEST_LOGGER:
                self.stream.flush()
        except Exception:
            self.handleError(record)


def configure(stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    """milliwatt's loggers write JSON lines to `stream` (stderr by default)."""
    if stream is None:  # stderr, buffered here: the telemetry thread decides when to flush
        stream = open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False)  # noqa: SIM115
    handler = _JsonHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("milliwatt")
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        old.flush()
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)  # INFO: the request lines
    return handler


def flush() -> None:
    for handler in logging.getLogger("milliwatt").handlers:
        if isinstance(handler, _JsonHandler):
            handler.flush()


def log_request(record: RequestRecord) -> None:
    logger = logging.getLogger(REQUEST_LOGGER)
    if not logger.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": record.id,
        "trace_id": record.trace_id,
        "tenant": None,  # API keys name one
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "route": record.route,
        "agent": record.agent,
        "model": record.model,
        "duration_ms": round(record.duration_ms, 3),
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "joules_est": round(record.joules_est, 6),
        "tools": [t["name"] for t in record.tools],
        "denials": record.denials,
        "waf_rules": record.waf_rules,
    }
    logger.info("request", extra={"fields": fields})
