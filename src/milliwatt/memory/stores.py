"""The session store `[storage] url` selects: SQLite in the data directory, or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from milliwatt.memory.sessions import SessionStore
from milliwatt.storage.url import parse_storage_url

SESSIONS_FILE = "sessions.db"


def open_session_store(data_dir: Path, storage_url: str | None = None) -> SessionStore:
    target = parse_storage_url(storage_url)
    if target.backend == "postgres" and target.url is not None:
        # imported here: psycopg is the `postgres` extra, never needed for SQLite
        from milliwatt.memory.postgres import PostgresSessionStore

        return PostgresSessionStore(target.url)
    from milliwatt.memory.sqlite import SqliteSessionStore

    return SqliteSessionStore(data_dir / SESSIONS_FILE)
