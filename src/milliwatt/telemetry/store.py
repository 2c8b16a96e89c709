"""The request ledger: every answered or refused API request, in SQLite.

The console, `milliwatt report` and the savings figures are computed from it. Writes go
through one background thread in batches, so a request never waits for the disk; readers
call `flush()` first and see every request that has finished.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from milliwatt.telemetry.records import STORED_FIELDS, RequestRecord

FILE_NAME = "requests.db"
_JSON_COLUMNS = ("tools", "denials", "waf_rules")
_COLUMNS = STORED_FIELDS
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, ts REAL NOT NULL, method TEXT, path TEXT, status INTEGER,
    duration_ms REAL, route TEXT, agent TEXT, model TEXT, tier INTEGER, stop TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER, model_calls INTEGER, joules_est REAL,
    tools TEXT, denials TEXT, waf_rules TEXT, waf_blocked INTEGER, trace_id TEXT,
    session TEXT, streamed INTEGER
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
"""
_STOP = object()
BATCH_SECONDS = 0.5


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # telemetry: a crash may lose the last batch
    return db


class RequestStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_db = _connect(self.path)
        self._writer_db.executescript(_SCHEMA)
        self._reader = _connect(self.path)
        self._read_lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue()
        self._flushing = threading.Event()
        self._thread = threading.Thread(target=self._write, name="request-ledger", daemon=True)
        self._thread.start()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> RequestStore:
        return cls(Path(data_dir) / FILE_NAME)

    def add(self, record: RequestRecord) -> None:
        self._queue.put(record)

    def flush(self) -> None:
        """Return once every record added so far is in the database."""
        if self._thread.is_alive():
            self._flushing.set()  # a reader is waiting: write now
            try:
                self._queue.join()
            finally:
                self._flushing.clear()

    def since(self, ts: float, limit: int = 200_000) -> list[RequestRecord]:
        """Requests that arrived at `ts` or later, oldest first (at most `limit`, the newest)."""
        return self._select("WHERE ts >= ? ORDER BY ts DESC LIMIT ?", (ts, limit))[::-1]

    def latest(self, limit: int = 50, after: int = 0) -> list[tuple[int, RequestRecord]]:
        """The last finished requests, newest first, each with its place in the ledger;
        with `after`, only those stored after that place (a live feed's cursor: a long
        request that started earlier but finished later is not missed)."""
        with self._read_lock:
            rows = self._reader.execute(
                f"SELECT rowid, {', '.join(_COLUMNS)} FROM requests WHERE rowid > ? "
                "ORDER BY rowid DESC LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(row[0], _record(row[1:])) for row in rows]

    def _select(self, clause: str, params: tuple[Any, ...]) -> list[RequestRecord]:
        with self._read_lock:
            rows = self._reader.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM requests {clause}", params
            ).fetchall()
        return [_record(row) for row in rows]

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(10)
        self._reader.close()

    def _write(self) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        insert = f"INSERT OR IGNORE INTO requests ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        db = self._writer_db
        while True:
            batch = [self._queue.get()]
            if batch[0] is not _STOP and not self._flushing.is_set():
                # one transaction per BATCH_SECONDS, not per request: a commit costs more
                # CPU than the request it records
                self._flushing.wait(BATCH_SECONDS)
            while len(batch) < 5000:  # one transaction for all that is waiting
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if isinstance(r, RequestRecord)]
            try:
                with db:
                    db.executemany(insert, [_row(r) for r in records])
            except sqlite3.Error:  # the ledger must not take the server down with it
                import logging

                logging.getLogger(__name__).exception("request ledger: %d lost", len(records))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if any(item is _STOP for item in batch):
                db.close()
                return


def _row(record: RequestRecord) -> tuple[Any, ...]:
    data = record.to_dict()
    for column in _JSON_COLUMNS:
        data[column] = json.dumps(data[column])
    return tuple(data[c] for c in _COLUMNS)


def _record(row: tuple[Any, ...]) -> RequestRecord:
    data = dict(zip(_COLUMNS, row, strict=True))
    for column in _JSON_COLUMNS:
        data[column] = json.loads(data[column] or "[]")
    data["waf_blocked"] = bool(data["waf_blocked"])
    data["streamed"] = bool(data["streamed"])
    return RequestRecord.from_dict(data)
