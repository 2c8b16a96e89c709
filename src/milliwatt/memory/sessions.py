"""Conversations: the narrow interface every session store implements (SQLite now)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from milliwatt.errors import InvalidSessionNameError
from milliwatt.models.base import Message

# \Z, not $: `$` also matches before a final newline, and "ada\n" would be a second "ada"
_SESSION_NAME = re.compile(r"[\w.:@-]{1,128}\Z")
_QUOTED = 40  # characters of a refused name quoted back


def check_session_name(name: str) -> str:
    """The name in NFKC form (fullwidth "ａｄａ" is "ada"), or ValueError."""
    normal = unicodedata.normalize("NFKC", name[:1024])
    if len(name) > 1024 or not _SESSION_NAME.match(normal):
        quoted = repr(name[:_QUOTED]) + ("..." if len(name) > _QUOTED else "")
        raise InvalidSessionNameError(
            f"invalid session name {quoted}: use 1-128 letters, digits or . _ : @ -"
        )
    return normal


@dataclass(frozen=True)
class TurnCost:
    """What one answered request cost; session budgets add these up."""

    tokens: int = 0
    model_calls: int = 0
    seconds: float = 0.0
    joules_est: float = 0.0


@dataclass(frozen=True)
class SessionInfo:
    name: str
    agent: str
    turns: int
    messages: int
    created: str
    updated: str
    cost: TurnCost


def session_info_query(where: str) -> str:
    """Every store's summary of sessions (SQL both SQLite and PostgreSQL run), filtered by
    `where` ("" or "WHERE s.name = <placeholder>")."""
    return f"""
        SELECT s.name, s.agent, COUNT(t.id),
               (SELECT COUNT(*) FROM messages m WHERE m.session = s.name),
               s.created, s.updated,
               COALESCE(SUM(t.tokens), 0), COALESCE(SUM(t.model_calls), 0),
               COALESCE(SUM(t.seconds), 0), COALESCE(SUM(t.joules_est), 0)
        FROM sessions s LEFT JOIN turns t ON t.session = s.name
        {where} GROUP BY s.name ORDER BY s.updated DESC, s.name"""


class SessionStore(Protocol):
    def history(self, session: str) -> list[Message]:
        """Every stored message of the session, oldest first (empty for a new session)."""
        ...

    def append_turn(
        self, session: str, agent: str, messages: list[Message], cost: TurnCost
    ) -> None:
        """Store one whole turn (the user's message and all replies) atomically."""
        ...

    def info(self, session: str) -> SessionInfo | None: ...

    def list(self) -> list[SessionInfo]: ...

    def close(self) -> None: ...
