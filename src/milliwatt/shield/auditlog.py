"""The WAF audit log: one JSON object per line, appended atomically, secrets redacted.

Several server processes may share one log file. Each record is written with a single
`write(2)` on a descriptor opened with O_APPEND, so lines from different workers never
interleave and an existing log is never truncated or rewritten.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from milliwatt.shield.redaction import redact_record

# Strings longer than this are cut: matched data can be attacker-sized, a log line must not be.
MAX_STRING = 512
_CUT_MARK = "...[truncated]"


def truncate(value: Any, limit: int = MAX_STRING) -> Any:
    """A copy of `value` in which every string is at most `limit` characters (plus a mark)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + _CUT_MARK
    if isinstance(value, Mapping):
        return {str(k): truncate(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [truncate(v, limit) for v in value]
    return value


class AuditLog:
    """Appends audit records to a JSON-lines file, creating its folder when needed."""

    def __init__(self, path: Path, *, max_string: int = MAX_STRING) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"audit log {self.path} exists and is not a regular file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._max_string = max_string
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        redacted = redact_record(truncate(record, self._max_string))
        line = json.dumps(redacted, ensure_ascii=False, default=str)
        data = (line + "\n").encode("utf-8")
        with self._lock:
            written = os.write(self._fd, data)
            # a short write on a regular file means the disk is full; finish the line
            while written < len(data):
                written += os.write(self._fd, data[written:])

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of an audit log, in order; names the line of any that is not JSON."""
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON audit record: {exc.msg}") from exc
