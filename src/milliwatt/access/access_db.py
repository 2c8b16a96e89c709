"""Where API keys, tenants and operators are kept: the data directory's `access.db` (SQLite),
or, with `[storage] url` naming PostgreSQL, that database, shared by every node.

The stores write one SQL for both: `?` placeholders (PostgreSQL's `%s` put in their place),
`ON CONFLICT`, `TRUE`. Neither backend caches a row: every read goes to the database, so a
key created or revoked on one node holds for the next request on every other. The PostgreSQL
tables come from the numbered migration steps (storage/migrations.py); SQLite's from the
schema each store passes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from milliwatt.storage.postgres import database
from milliwatt.storage.url import parse_storage_url

DATABASE_NAME = "access.db"

Row = tuple[Any, ...]
Statement = tuple[str, Sequence[object]]


class AccessDatabase(Protocol):
    def query(self, sql: str, args: Sequence[object] = ()) -> list[Row]: ...

    def write(self, *statements: Statement) -> int:
        """Run `statements` in one transaction; the rows the last one changed."""
        ...

    def close(self) -> None: ...


class SqliteAccessDatabase:
    """WAL so that several server processes read it at once, every commit on disk."""

    def __init__(self, data_dir: Path, schema: str) -> None:
        self._db = sqlite3.connect(Path(data_dir) / DATABASE_NAME, check_same_thread=False,
                                   isolation_level=None)  # fmt: skip
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(schema)
        self._lock = threading.Lock()

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def write(self, *statements: Statement) -> int:
        changed = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    changed = self._db.execute(sql, args).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return changed

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresAccessDatabase:
    """The process's pool for the URL (shared with the other stores), schema migrated."""

    def __init__(self, url: str) -> None:
        self.url = url
        database(url)  # connect and migrate now: a bad URL fails at start, not at a request

    def query(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        with database(self.url).connection() as conn:
            return conn.execute(_postgres(sql), args).fetchall()

    def write(self, *statements: Statement) -> int:
        changed = 0
        with database(self.url).connection() as conn, conn.transaction():
            for sql, args in statements:
                changed = conn.execute(_postgres(sql), args).rowcount
        return changed

    def close(self) -> None:
        """The pool is the process's, shared with other stores."""


def _postgres(sql: str) -> bytes:
    # the stores' SQL holds no "?" or "%" but as placeholders; bytes: psycopg's LiteralString
    return sql.replace("?", "%s").encode()


def open_access_database(
    data_dir: Path, storage_url: str | None, sqlite_schema: str
) -> AccessDatabase:
    """The database `[storage] url` selects: PostgreSQL, or access.db in `data_dir`."""
    target = parse_storage_url(storage_url)
    if target.backend == "postgres" and target.url is not None:
        return PostgresAccessDatabase(target.url)
    return SqliteAccessDatabase(data_dir, sqlite_schema)
