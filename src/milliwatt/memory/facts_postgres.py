"""Facts in PostgreSQL: the statements of `facts.FactStore`, with full text in a tsvector.

The text ranking is BM25 as FTS5 computes it (storage/fulltext.py), over the user's own facts;
it is fused with the embedding ranking by reciprocal rank (facts.FactStoreBase.recall).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from milliwatt.memory.facts import CANDIDATES, FactStoreBase, Row
from milliwatt.models.embeddings import Embedder
from milliwatt.storage.fulltext import bm25_ranked
from milliwatt.storage.postgres import database


class PostgresFactStore(FactStoreBase):
    def __init__(self, url: str, embedder: Embedder | None = None) -> None:
        super().__init__(embedder)
        self.url = url
        database(url)  # connect and migrate now: a bad URL fails at start

    def _insert(
        self, user: str, agent: str, text: str, source: str, created: float, vector: bytes
    ) -> int:
        if "\x00" in text or "\x00" in source:  # PostgreSQL text cannot hold NUL
            raise ValueError("a fact may not hold a NUL character (\\u0000)")
        with database(self.url).connection() as conn:
            # DO UPDATE (of nothing that changes) rather than DO NOTHING: RETURNING then
            # yields the id of the fact already there, in the same statement
            row = conn.execute(
                'INSERT INTO facts ("user", agent, text, source, created_at, vector) '
                "VALUES (%s, %s, %s, %s, %s, %s) "
                'ON CONFLICT ("user", agent, text) DO UPDATE SET text = excluded.text '
                "RETURNING id",
                (user, agent, text, source, created, vector),
            ).fetchone()
        assert row is not None  # an upsert with RETURNING yields its row
        return int(row[0])

    def _vectors_and_matches(
        self, user: str, agent: str, words: list[str]
    ) -> tuple[list[tuple[int, bytes]], list[int]]:
        with database(self.url).connection() as conn:
            rows = conn.execute(
                'SELECT id, vector FROM facts WHERE "user" = %s AND agent = %s ORDER BY id',
                (user, agent),
            ).fetchall()
            if not words:
                return [(int(i), bytes(v)) for i, v in rows], []
            query = bm25_ranked(
                len(words),
                sql.SQL(
                    'SELECT id, words, tokens FROM facts, q WHERE "user" = %(user)s '
                    "AND agent = %(agent)s AND words @@ q.query"
                ),
                sql.SQL(
                    "SELECT count(*)::float8 AS n, avg(tokens)::float8 AS avgdl "
                    'FROM facts WHERE "user" = %(user)s AND agent = %(agent)s'
                ),
            )
            params: dict[str, Any] = {f"w{i}": w for i, w in enumerate(words)}
            params |= {"query_text": " ".join(words), "limit": CANDIDATES}
            matched = conn.execute(query, params | {"user": user, "agent": agent}).fetchall()
        return [(int(i), bytes(v)) for i, v in rows], [int(r[0]) for r in matched]

    def _all(self, user: str, agent: str) -> list[Row]:
        with database(self.url).connection() as conn:
            rows = conn.execute(
                "SELECT id, text, source, created_at FROM facts "
                'WHERE "user" = %s AND agent = %s ORDER BY created_at DESC, id DESC',
                (user, agent),
            ).fetchall()
        return [_row(r) for r in rows]

    def _by_ids(self, user: str, agent: str, ids: list[int]) -> list[Row]:
        if not ids:
            return []
        with database(self.url).connection() as conn:
            rows = conn.execute(
                "SELECT id, text, source, created_at FROM facts "
                'WHERE "user" = %s AND agent = %s AND id = ANY(%s)',
                (user, agent, ids),
            ).fetchall()
        return [_row(r) for r in rows]

    def _delete(self, user: str, agent: str, fact_id: int) -> int:
        with database(self.url).connection() as conn:
            cursor = conn.execute(
                'DELETE FROM facts WHERE id = %s AND "user" = %s AND agent = %s',
                (fact_id, user, agent),
            )
        return cursor.rowcount


def _row(row: tuple[Any, ...]) -> Row:
    return int(row[0]), str(row[1]), str(row[2]), float(row[3])
