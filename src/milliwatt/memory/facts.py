"""Long-term facts about a user, kept across sessions, scoped to (user, agent).

Every statement filters on both user and agent inside SQL, so one user's facts cannot
reach another user's recall, however the query is phrased. Recall fuses full-text (FTS5
BM25) and embedding similarity by reciprocal rank, like the knowledge base; a user's facts
are few enough that an exact numpy scan over their vectors is the fastest index.

`FactStore` keeps them in SQLite; `facts_postgres.PostgresFactStore` in PostgreSQL. Both
share everything here but their statements, so recall ranks alike on either.
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
from milliwatt.storage.url import parse_storage_url

DATABASE_NAME = "facts.db"
MAX_FACT_CHARS = 2000
CANDIDATES = 50
RRF_K = 60
MAX_QUERY_WORDS = 64  # words of a query the full-text search looks for

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

Row = tuple[int, str, str, float]  # id, text, source, created_at


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


class FactStoreBase:
    """remember / recall / facts / forget over a backend's few statements (the `_` methods)."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder

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
        return self._insert(user, agent, text, source.strip(), time.time(), vector)

    def recall(self, user: str, agent: str, query: str, k: int = 5) -> list[Fact]:
        """The user's k facts most relevant to the query; the newest ones if it is blank."""
        _check_scope(user, agent)
        if not 1 <= k <= 100:
            raise ValueError(f"k must be between 1 and 100, got {k}")
        if not query.strip():
            return self.facts(user, agent)[:k]
        query_vector = self.embedder.embed([query])[0]
        words = list(dict.fromkeys(m.group().lower() for m in _WORD.finditer(query)))
        rows, matched = self._vectors_and_matches(user, agent, words[:MAX_QUERY_WORDS])
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
        found = {r[0]: r for r in self._by_ids(user, agent, top)}
        return [Fact(*found[i], fused[i]) for i in top if i in found]

    def facts(self, user: str, agent: str) -> list[Fact]:
        """All of the user's facts for this agent, newest first."""
        _check_scope(user, agent)
        return [Fact(*r) for r in self._all(user, agent)]

    def forget(self, user: str, agent: str, fact_id: int) -> None:
        """Delete one of the user's facts; another user's id is reported as not found."""
        _check_scope(user, agent)
        if self._delete(user, agent, fact_id) == 0:
            raise FactNotFoundError(fact_id)

    def close(self) -> None:
        pass

    # a backend's statements, each filtered on user and agent
    def _insert(
        self, user: str, agent: str, text: str, source: str, created: float, vector: bytes
    ) -> int:
        raise NotImplementedError

    def _vectors_and_matches(
        self, user: str, agent: str, words: list[str]
    ) -> tuple[list[tuple[int, bytes]], list[int]]:
        """(id, vector) of each of the user's facts; the ids full text matches, best first."""
        raise NotImplementedError

    def _all(self, user: str, agent: str) -> list[Row]:
        raise NotImplementedError

    def _by_ids(self, user: str, agent: str, ids: list[int]) -> list[Row]:
        raise NotImplementedError

    def _delete(self, user: str, agent: str, fact_id: int) -> int:
        raise NotImplementedError


class FactStore(FactStoreBase):
    """Facts in `<data_dir>/facts.db` (WAL)."""

    def __init__(self, path: Path, embedder: Embedder | None = None) -> None:
        super().__init__(embedder)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def _insert(
        self, user: str, agent: str, text: str, source: str, created: float, vector: bytes
    ) -> int:
        with self._lock:
            self._conn.execute(
                "INSERT INTO facts (user, agent, text, source, created_at, vector) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user, agent, text) DO NOTHING",
                (user, agent, text, source, created, vector),
            )
            row = self._conn.execute(
                "SELECT id FROM facts WHERE user = ? AND agent = ? AND text = ?",
                (user, agent, text),
            ).fetchone()
        return int(row[0])

    def _vectors_and_matches(
        self, user: str, agent: str, words: list[str]
    ) -> tuple[list[tuple[int, bytes]], list[int]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, vector FROM facts WHERE user = ? AND agent = ?", (user, agent)
            ).fetchall()
            if not words:
                return rows, []
            match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
            matched = self._conn.execute(
                "SELECT facts.id FROM facts_fts JOIN facts ON facts.id = facts_fts.rowid "
                "WHERE facts_fts MATCH ? AND facts.user = ? AND facts.agent = ? "
                "ORDER BY bm25(facts_fts) LIMIT ?",
                (match, user, agent, CANDIDATES),
            ).fetchall()
        return rows, [r[0] for r in matched]

    def _all(self, user: str, agent: str) -> list[Row]:
        with self._lock:
            return self._conn.execute(
                "SELECT id, text, source, created_at FROM facts "
                "WHERE user = ? AND agent = ? ORDER BY created_at DESC, id DESC",
                (user, agent),
            ).fetchall()

    def _by_ids(self, user: str, agent: str, ids: list[int]) -> list[Row]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._lock:
            return self._conn.execute(
                f"SELECT id, text, source, created_at FROM facts "
                f"WHERE user = ? AND agent = ? AND id IN ({marks})",
                (user, agent, *ids),
            ).fetchall()

    def _delete(self, user: str, agent: str, fact_id: int) -> int:
        with self._lock:
            return self._conn.execute(
                "DELETE FROM facts WHERE id = ? AND user = ? AND agent = ?",
                (fact_id, user, agent),
            ).rowcount


def _check_scope(user: str, agent: str) -> None:
    if not user or not user.strip():
        raise ValueError("facts need a user to belong to")
    if not agent or not agent.strip():
        raise ValueError("facts need an agent to belong to")


@lru_cache(maxsize=8)
def open_fact_store(data_dir: Path, storage_url: str | None = None) -> FactStoreBase:
    """The shared fact store of a data directory, or of the PostgreSQL `[storage] url` names
    (the remember/recall tools use this)."""
    target = parse_storage_url(storage_url)
    if target.backend == "postgres" and target.url is not None:
        # imported here: psycopg is the `postgres` extra, never needed for SQLite
        from milliwatt.memory.facts_postgres import PostgresFactStore

        return PostgresFactStore(target.url)
    return FactStore(data_dir / DATABASE_NAME)
