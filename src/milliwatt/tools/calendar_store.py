"""Where the calendar tools keep events: `<data_dir>/calendar.sqlite`, or the PostgreSQL
database `[storage] url` names. Times are UTC epoch seconds; an event is (id, title, start,
end). Booking checks for conflicts and inserts in one transaction that holds the user's
calendar, so two bookings of one slot cannot both pass the check."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from milliwatt.storage.url import parse_storage_url
from milliwatt.tools.registry import ToolContext, ToolError

if TYPE_CHECKING:
    import psycopg

DATABASE = "calendar.sqlite"
LOCK_CLASS = 0x6D63  # "mc": the advisory locks of PostgreSQL calendars, one per user

Event = tuple[str, str, int, int]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, title TEXT NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user, start);
"""

# threads opening a new calendar at once would race to switch it to WAL, and that switch
# does not wait for a lock: "database is locked"
_SETUP = threading.Lock()


class CalendarStore(Protocol):
    def book(self, user: str, event: Event, created: int) -> list[Event]:
        """Store `event` unless it overlaps others: those (then nothing is stored)."""
        ...

    def cancel(self, user: str, event_id: str) -> bool: ...

    def events(self, user: str, start: int, end: int) -> list[Event]:
        """The user's events overlapping [start, end), by start time."""
        ...


def calendar_store(context: ToolContext) -> CalendarStore:
    target = parse_storage_url(context.storage_url)
    if target.backend == "postgres" and target.url is not None:
        return PostgresCalendar(target.url)
    return SqliteCalendar(context.data_dir / DATABASE)


class SqliteCalendar:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        with _SETUP:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        return db

    def book(self, user: str, event: Event, created: int) -> list[Event]:
        event_id, title, start, end = event
        with closing(self._connect()) as db:
            # IMMEDIATE takes the write lock first, so two bookings cannot both pass the check
            db.execute("BEGIN IMMEDIATE")
            try:
                conflicts = _sqlite_events(db, user, start, end)
                if not conflicts:
                    db.execute(
                        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                        (event_id, user, title, start, end, created),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return conflicts

    def cancel(self, user: str, event_id: str) -> bool:
        with closing(self._connect()) as db:
            removed = db.execute(
                "DELETE FROM events WHERE user = ? AND id = ?", (user, event_id)
            ).rowcount
        return bool(removed)

    def events(self, user: str, start: int, end: int) -> list[Event]:
        with closing(self._connect()) as db:
            return _sqlite_events(db, user, start, end)


def _sqlite_events(db: sqlite3.Connection, user: str, a: int, b: int) -> list[Event]:
    return db.execute(
        "SELECT id, title, start, end FROM events WHERE user = ? AND start < ? AND end > ? "
        "ORDER BY start",
        (user, b, a),
    ).fetchall()


class PostgresCalendar:
    def __init__(self, url: str) -> None:
        # imported here: psycopg is the `postgres` extra, never needed for SQLite
        from milliwatt.storage.postgres import database

        self._database = database
        self.url = url

    def book(self, user: str, event: Event, created: int) -> list[Event]:
        event_id, title, start, end = event
        if "\x00" in title:  # PostgreSQL text cannot hold NUL
            raise ToolError("the title may not hold a NUL character (\\u0000)")
        with self._database(self.url).connection() as conn, conn.transaction():
            # the user's calendar held until commit: a second booking waits, then sees this one
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, user))
            conflicts = self._events(conn, user, start, end)
            if not conflicts:
                conn.execute(
                    'INSERT INTO calendar_events (id, "user", title, start_at, end_at, created)'
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (event_id, user, title, start, end, created),
                )
        return conflicts

    def cancel(self, user: str, event_id: str) -> bool:
        with self._database(self.url).connection() as conn:
            cursor = conn.execute(
                'DELETE FROM calendar_events WHERE "user" = %s AND id = %s', (user, event_id)
            )
        return cursor.rowcount > 0

    def events(self, user: str, start: int, end: int) -> list[Event]:
        with self._database(self.url).connection() as conn:
            return self._events(conn, user, start, end)

    @staticmethod
    def _events(conn: psycopg.Connection[Any], user: str, a: int, b: int) -> list[Event]:
        rows = conn.execute(
            'SELECT id, title, start_at, end_at FROM calendar_events WHERE "user" = %s '
            "AND start_at < %s AND end_at > %s ORDER BY start_at",
            (user, b, a),
        ).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
