"""Long-term facts about a user, kept across sessions, scoped to (user, agent).

Every statement filters on both user and agent inside SQL, so one user's facts cannot
reach another user's recall, however the query is phrased. Recall fuses full-text (FTS5
BM25) and embedding similarity by reciprocal rank, like the knowledge base; a user's facts
are few enough that an exact numpy scan over their vectors is the fastest index.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from milliwatt.models.embeddings import Embedder, get_embedder

DATABASE_NAME = "facts.db"
MAX_FACT_CHARS = 2000
CANDIDATES = 50
RRF_K = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    agent TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (user, agent, text)
);
CREATE VIRTUAL TABLE IF NOT EXISTS facts_fts USING fts5(
    text, content='facts', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS facts_fts_insert AFTER INSERT ON facts BEGIN
    INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS facts_fts_delete AFTER DELETE ON facts BEGIN
    INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""

_WORD = re.compile(r"\w+", re.UNICODE)


class FactNotFoundError(LookupError):
    def __str__(self) -> str:
        return f"no fact {self.args[0]} for this user"


@dataclass(frozen=True)
class Fact:
    id: int
    text: str
    source: str  # where it was learnt: "user said", a document, a tool
    created_at: float  # Unix time
    score: float = 0.0  # fused rank score of a recall; 0 when listed


class FactStore:
    """Facts in `<data_dir>/facts.db` (WAL)."""

    def __init__(self, path: Path, embedder: Embedder | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._embedder = embedder
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder()
        return self._embedder

    def remember(self, user: str, agent: str, fact: str, source: str) -> int:
        """Store a fact; remembering the same words again returns the existing id."""
        _check_scope(user, agent)
        text = " ".join(fact.split())
        if not text:
            raise ValueError("the fact is empty")
        if len(text) > MAX_FACT_CHARS:
            raise ValueError(f"the fact is {len(text)} characters; the limit is {MAX_FACT_CHARS}")
        if not source.strip():
            raise ValueError("a fact needs a source (where it was learnt)")
        vector = self.embedder.embed([text])[0].tobytes()
        with self._lock:
            self._conn.execute(
                "INSERT INTO facts (user, agent, text, source, created_at, vector) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user, agent, text) DO NOTHING",
                (user, agent, text, source.strip(), time.time(), vector),
            )
            row = self._conn.execute(
                "SELECT id FROM facts WHERE user = ? AND agent = ? AND text = ?",
                (user, agent, text),
            ).fetchone()
        return int(row[0])

    def recall(self, user: str, agent: str, query: str, k: int = 5) -> list[Fact]:
        """The user's k facts most relevant to the query; the newest ones if it is blank."""
        _check_scope(user, agent)
        if not 1 <= k <= 100:
            raise ValueError(f"k must be between 1 and 100, got {k}")
        if not query.strip():
            return self.facts(user, agent)[:k]
        query_vector = self.embedder.embed([query])[0]
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, vector FROM facts WHERE user = ? AND agent = ?", (user, agent)
            ).fetchall()
            matched = self._full_text(user, agent, query)
        if not rows:
            return []
        ids = np.array([r[0] for r in rows])
        sims = (
            np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            @ query_vector
        )
        by_vector = [int(i) for i in ids[np.argsort(-sims, kind="stable")[:CANDIDATES]]]
        fused: dict[int, float] = {}
        for ranking in (by_vector, matched):
            for rank, fact_id in enumerate(ranking):
                fused[fact_id] = fused.get(fact_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        top = sorted(fused, key=lambda i: (-fused[i], -i))[:k]
        found = {f.id: f for f in self._by_ids(user, agent, top)}
        return [
            Fact(found[i].id, found[i].text, found[i].source, found[i].created_at, fused[i])
            for i in top
            if i in found
        ]

    def facts(self, user: str, agent: str) -> list[Fact]:
        """All of the user's facts for this agent, newest first."""
        _check_scope(user, agent)
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, text, source, created_at FROM facts "
                "WHERE user = ? AND agent = ? ORDER BY created_at DESC, id DESC",
                (user, agent),
            ).fetchall()
        return [Fact(*r) for r in rows]

    def forget(self, user: str, agent: str, fact_id: int) -> None:
        """Delete one of the user's facts; another user's id is reported as not found."""
        _check_scope(user, agent)
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM facts WHERE id = ? AND user = ? AND agent = ?",
                (fact_id, user, agent),
            )
        if cursor.rowcount == 0:
            raise FactNotFoundError(fact_id)

    def close(self) -> None:
        self._conn.close()

    def _full_text(self, user: str, agent: str, query: str) -> list[int]:
        words = list(dict.fromkeys(m.group().lower() for m in _WORD.finditer(query)))
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        rows = self._conn.execute(
            "SELECT facts.id FROM facts_fts JOIN facts ON facts.id = facts_fts.rowid "
            "WHERE facts_fts MATCH ? AND facts.user = ? AND facts.agent = ? "
            "ORDER BY bm25(facts_fts) LIMIT ?",
            (match, user, agent, CANDIDATES),
        ).fetchall()
        return [r[0] for r in rows]

    def _by_ids(self, user: str, agent: str, ids: list[int]) -> list[Fact]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, text, source, created_at FROM facts "
                f"WHERE user = ? AND agent = ? AND id IN ({marks})",
                (user, agent, *ids),
            ).fetchall()
        return [Fact(*r) for r in rows]


def _check_scope(user: str, agent: str) -> None:
    if not user or not user.strip():
        raise ValueError("facts need a user to belong to")
    if not agent or not agent.strip():
        raise ValueError("facts need an agent to belong to")


@lru_cache(maxsize=8)
def open_fact_store(data_dir: Path) -> FactStore:
    """The shared FactStore of a data directory (the remember/recall tools use this)."""
    return FactStore(data_dir / DATABASE_NAME)
