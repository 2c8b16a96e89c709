"""Sessions in SQLite (WAL). A turn is written in one transaction, so a crash or a failed
model call never leaves half a turn, and a turn the server acknowledged survives kill -9."""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from milliwatt.memory.sessions import (
    SessionInfo,
    TurnCost,
    check_session_name,
    session_info_query,
)
from milliwatt.models.base import Message, ToolCall

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(name),
    created TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    model_calls INTEGER NOT NULL,
    seconds REAL NOT NULL,
    joules_est REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(name),
    turn INTEGER NOT NULL REFERENCES turns(id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    tool_calls TEXT,
    tool_call_id TEXT,
    name TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session, id);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns(session);
"""


class SqliteSessionStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed turn is on disk before the server answers
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def history(self, session: str) -> list[Message]:
        with self._lock:
            rows = self._db.execute(
                "SELECT role, content, tool_calls, tool_call_id, name FROM messages "
                "WHERE session = ? ORDER BY id",
                (session,),
            ).fetchall()
        return [_message(*row) for row in rows]

    def append_turn(
        self, session: str, agent: str, messages: list[Message], cost: TurnCost
    ) -> None:
        session = check_session_name(session)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO sessions(name, agent, created, updated) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET updated = excluded.updated",
                    (session, agent, now, now),
                )
                turn = self._db.execute(
                    "INSERT INTO turns(session, created, tokens, model_calls, seconds, joules_est)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (session, now, cost.tokens, cost.model_calls, cost.seconds, cost.joules_est),
                ).lastrowid
                self._db.executemany(
                    "INSERT INTO messages(session, turn, role, content, tool_calls, "
                    "tool_call_id, name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            session,
                            turn,
                            m.role,
                            m.content,
                            json.dumps([asdict(c) for c in m.tool_calls]) if m.tool_calls else None,
                            m.tool_call_id,
                            m.name,
                        )
                        for m in messages
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def info(self, session: str) -> SessionInfo | None:
        infos = self._infos("WHERE s.name = ?", (session,))
        return infos[0] if infos else None

    def list(self) -> list[SessionInfo]:
        return self._infos("", ())

    # builtins.list: the method list() above shadows the type in the class body
    def _infos(self, where: str, params: tuple[str, ...]) -> builtins.list[SessionInfo]:
        query = session_info_query(where)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [
            SessionInfo(name, agent, turns, messages, created, updated, TurnCost(*cost))
            for name, agent, turns, messages, created, updated, *cost in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _message(
    role: str, content: str, tool_calls: str | None, tool_call_id: str | None, name: str | None
) -> Message:
    calls = [ToolCall(**c) for c in json.loads(tool_calls)] if tool_calls else []
    # the column holds only Message.role values, written by append_turn() above
    return Message(role, content, calls, tool_call_id, name)  # type: ignore[arg-type]
