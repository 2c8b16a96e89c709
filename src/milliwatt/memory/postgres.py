"""Sessions in PostgreSQL: the same interface and guarantees as the SQLite store.

A turn is written in one transaction (the session row, the turn, its messages), committed
with `synchronous_commit = on`: once append_turn returns, the turn is in the server's WAL on
disk, and a crash of this process or of the server loses nothing acknowledged.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from milliwatt.errors import InvalidRequestError
from milliwatt.memory.sessions import (
    SessionInfo,
    TurnCost,
    check_session_name,
    session_info_query,
)
from milliwatt.models.base import Message, ToolCall
from milliwatt.storage.postgres import database


class PostgresSessionStore:
    def __init__(self, url: str) -> None:
        self.url = url
        database(url)  # connect and migrate now: a bad URL fails at start, not at a turn

    def history(self, session: str) -> list[Message]:
        with database(self.url).connection() as conn:
            rows = conn.execute(
                "SELECT role, content, tool_calls, tool_call_id, name FROM messages "
                "WHERE session = %s ORDER BY id",
                (session,),
            ).fetchall()
        return [_message(*row) for row in rows]

    def append_turn(
        self, session: str, agent: str, messages: list[Message], cost: TurnCost
    ) -> None:
        session = check_session_name(session)
        for message in messages:
            _check_storable(message)
        now = datetime.now(UTC).replace(microsecond=0)
        with database(self.url).connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO sessions(name, agent, created, updated) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET updated = excluded.updated",
                (session, agent, now, now),
            )
            row = conn.execute(
                "INSERT INTO turns(session, created, tokens, model_calls, seconds, joules_est)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (session, now, cost.tokens, cost.model_calls, cost.seconds, cost.joules_est),
            ).fetchone()
            assert row is not None  # RETURNING of an INSERT always yields the row
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO messages(session, turn, role, content, tool_calls, "
                    "tool_call_id, name) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            session,
                            row[0],
                            m.role,
                            m.content,
                            Jsonb([asdict(c) for c in m.tool_calls]) if m.tool_calls else None,
                            m.tool_call_id,
                            m.name,
                        )
                        for m in messages
                    ],
                )

    def info(self, session: str) -> SessionInfo | None:
        infos = self._infos("WHERE s.name = %s", (session,))
        return infos[0] if infos else None

    def list(self) -> list[SessionInfo]:
        return self._infos("", ())

    # builtins.list: the method list() above shadows the type in the class body
    def _infos(self, where: str, params: tuple[str, ...]) -> builtins.list[SessionInfo]:
        query = session_info_query(where)
        with database(self.url).connection() as conn:
            rows = conn.execute(query.encode(), params).fetchall()
        return [
            SessionInfo(
                name,
                agent,
                int(turns),
                int(messages),
                _iso(created),
                _iso(updated),
                TurnCost(int(cost[0]), int(cost[1]), float(cost[2]), float(cost[3])),
            )
            for name, agent, turns, messages, created, updated, *cost in rows
        ]

    def close(self) -> None:
        """The pool is the process's, shared with other stores: closed with the runtime."""


def _iso(moment: datetime) -> str:
    # the SQLite store's form: "2026-03-01T09:30:00+00:00"
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _check_storable(message: Message) -> None:
    # PostgreSQL text and jsonb cannot hold NUL; refused whole rather than stored altered
    calls = [asdict(c) for c in message.tool_calls]
    if _holds_nul([message.content, message.tool_call_id, message.name, calls]):
        raise InvalidRequestError(
            f"a {message.role} message holds a NUL character (\\u0000), "
            "which the PostgreSQL session store cannot keep"
        )


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


def _message(
    role: str, content: str, tool_calls: Any, tool_call_id: str | None, name: str | None
) -> Message:
    calls = [ToolCall(**c) for c in tool_calls] if tool_calls else []
    # the column holds only Message.role values, written by append_turn() above
    return Message(role, content, calls, tool_call_id, name)  # type: ignore[arg-type]
