"""Facts in PostgreSQL: the statements of `facts.FactStore`, with full text in a tsvector.

The text ranking is ts_rank normalised by length (SQLite: BM25); either ranking is fused with
the same embedding ranking by reciprocal rank (facts.FactStoreBase.recall).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from milliwatt.memory.facts import CANDIDATES, FactStoreBase, Row
from milliwatt.models.embeddings import Embedder
from milliwatt.storage.postgres import database

CONFIG = "milliwatt_english"  # the text search configuration of storage.migrations.FACTS


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
            matched = conn.execute(
                sql.SQL(
                    "WITH q AS (SELECT {query} AS query) "
                    'SELECT id FROM facts, q WHERE "user" = %s AND agent = %s '
                    "AND words @@ q.query "
                    "ORDER BY ts_rank(words, q.query, 1) DESC, id LIMIT %s"
                ).format(query=_any_word(len(words))),
                (*words, user, agent, CANDIDATES),
            ).fetchall()
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


def _any_word(count: int) -> sql.Composed:
    # one plainto_tsquery per word, OR-ed (||): a word's punctuation is never query syntax,
    # as FTS5's quoted phrases are not
    each = sql.SQL("plainto_tsquery({config}, %s)").format(config=sql.Literal(CONFIG))
    return sql.SQL(" || ").join([each] * count)


def _row(row: tuple[Any, ...]) -> Row:
    return int(row[0]), str(row[1]), str(row[2]), float(row[3])
