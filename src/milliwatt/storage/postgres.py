"""PostgreSQL connections: one psycopg 3 pool per URL in a process, schema migrated on open.

Connections are in autocommit mode and every write says where its transaction starts and
ends (`with conn.transaction():`), so nothing waits in an open transaction by accident.
`synchronous_commit` is set on for every connection: a commit returns only once the server
has flushed it to its WAL, so a turn the server acknowledged survives a crash of either side.
psycopg is the `postgres` extra: this module imports it only when a database is opened.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from milliwatt.errors import ServiceUnavailableError
from milliwatt.storage.migrations import migrate
from milliwatt.storage.url import parse_storage_url, redact

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

CONNECT_TIMEOUT_SECONDS = 10.0
POOL_MAX_SIZE = 8


class DatabaseUnavailableError(ServiceUnavailableError):
    """The PostgreSQL server of `[storage] url` cannot be reached or refused the work."""

    service = "the database"
    code = "database_unavailable"


class PostgresDatabase:
    """A pool of connections to one database, its schema brought up to date on open."""

    def __init__(self, url: str, max_size: int = POOL_MAX_SIZE) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:
            raise DatabaseUnavailableError(
                "PostgreSQL storage needs the postgres extra: pip install 'milliwatt[postgres]'"
            ) from None
        self.url = parse_storage_url(url).url or url
        self._errors: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout)
        self.pool: ConnectionPool[Any] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=max_size,
            kwargs=self._connect_options(),
            configure=_configure,
            # a connection is checked (one empty round trip) before it is handed out: after
            # a server restart or a failover, requests get fresh connections, not errors
            check=ConnectionPool.check_connection,
            open=False,
            name="milliwatt",
        )
        try:
            # one plain connection first: an unreachable server fails now, not after the
            # pool's retries; it migrates the schema before any pooled connection is used
            with psycopg.connect(self.url, **self._connect_options()) as conn:
                self.schema_version = migrate(conn)
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except self._errors as exc:
            self.pool.close()
            raise DatabaseUnavailableError(
                f"PostgreSQL at {redact(self.url)} is unavailable: {exc}"
            ) from exc

    @staticmethod
    def _connect_options() -> dict[str, Any]:
        return {
            "autocommit": True,
            "connect_timeout": int(CONNECT_TIMEOUT_SECONDS),
            "application_name": "milliwatt",  # what operators see in pg_stat_activity
        }

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; a server that cannot be reached is DatabaseUnavailableError."""
        try:
            with self.pool.connection(timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                yield conn
        except self._errors as exc:
            raise DatabaseUnavailableError(
                f"PostgreSQL at {redact(self.url)} is unavailable: {exc}"
            ) from exc

    def close(self) -> None:
        self.pool.close()


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET synchronous_commit = on")


_databases: dict[str, PostgresDatabase] = {}
_lock = threading.Lock()


def database(url: str) -> PostgresDatabase:
    """The process's pool for `url`, opened (and the schema migrated) on first use."""
    with _lock:
        found = _databases.get(url)
        if found is None:
            found = _databases[url] = PostgresDatabase(url)
        return found


def close_database(url: str) -> None:
    """Close the pool for `url` (the next `database(url)` opens a new one)."""
    with _lock:
        found = _databases.pop(url, None)
    if found is not None:
        found.close()
