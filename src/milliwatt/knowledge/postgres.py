"""The knowledge database in PostgreSQL (pgvector not needed): collections, documents and
chunks in tables, vectors as float32 bytea, full text in a tsvector ranked by BM25 as FTS5
ranks (storage/fulltext.py). The IVF index stays numpy, built from these rows (index.py),
as over SQLite.

Ingests take a transaction-level advisory lock, so one runs at a time across every node, as
SQLite's BEGIN IMMEDIATE has them do within one machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

import milliwatt.knowledge.store as store
from milliwatt.storage.fulltext import bm25_ranked
from milliwatt.storage.postgres import database

LOCK_CLASS = 0x6D6B  # "mk": knowledge ingests
ANALYZE_AFTER = 500  # chunks written by one ingest


class PostgresKnowledgeStore:
    def __init__(self, url: str) -> None:
        self.url = url
        database(url)  # connect and migrate now: a bad URL fails at start
        self._local = threading.local()  # the connection of this thread's open transaction

    @contextmanager
    def write_transaction(self) -> Iterator[None]:
        self._local.inserted = 0
        with database(self.url).connection() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_CLASS,))
                self._local.conn = conn
                try:
                    yield
                finally:
                    self._local.conn = None
            if self._local.inserted >= ANALYZE_AFTER:
                # fresh statistics now, not at autovacuum's next pass: until then the
                # planner does not know the new rows and scans rather than use the GIN index
                conn.execute("ANALYZE knowledge_documents, knowledge_chunks")

    @contextmanager
    def reading(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:  # inside a transaction already
            yield
            return
        with database(self.url).connection() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        held: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
        else:
            with database(self.url).connection() as conn:
                yield conn

    def _rows(
        self,
        query: str | sql.Composed,
        params: tuple[Any, ...] | dict[str, Any],
        prepare: bool | None = None,
    ) -> list[Any]:
        with self._conn() as conn:
            text = query.encode() if isinstance(query, str) else query
            return conn.execute(text, params, prepare=prepare).fetchall()

    def get_collection(self, key: store.CollectionKey) -> store.Collection | None:
        rows = self._rows(
            "SELECT id, dimension, generation FROM knowledge_collections "
            "WHERE tenant = %s AND agent = %s AND name = %s",
            (key.tenant, key.agent, key.name),
        )
        return store.Collection(int(rows[0][0]), key, rows[0][1], int(rows[0][2])) if rows else None

    def list_collections(self, tenant: str, agent: str) -> list[store.Collection]:
        rows = self._rows(
            "SELECT id, name, dimension, generation FROM knowledge_collections "
            "WHERE tenant = %s AND agent = %s ORDER BY name",
            (tenant, agent),
        )
        return [
            store.Collection(int(r[0]), store.CollectionKey(tenant, agent, r[1]), r[2], int(r[3]))
            for r in rows
        ]

    def ensure_collection(self, key: store.CollectionKey, dimension: int) -> store.Collection:
        existing = self.get_collection(key)
        if existing is not None:
            if existing.dimension != dimension:
                raise ValueError(
                    f"collection {key} holds {existing.dimension}-dimensional vectors, "
                    f"not {dimension}"
                )
            return existing
        rows = self._rows(
            "INSERT INTO knowledge_collections (tenant, agent, name, dimension, created_at) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (key.tenant, key.agent, key.name, dimension, time.time()),
        )
        return store.Collection(int(rows[0][0]), key, dimension, 0)

    def bump_generation(self, collection_id: int) -> int:
        rows = self._rows(
            "UPDATE knowledge_collections SET generation = generation + 1 WHERE id = %s "
            "RETURNING generation",
            (collection_id,),
        )
        return int(rows[0][0])

    def document_hash(self, collection_id: int, source: str) -> str | None:
        rows = self._rows(
            "SELECT content_hash FROM knowledge_documents WHERE collection_id = %s AND source = %s",
            (collection_id, source),
        )
        return str(rows[0][0]) if rows else None

    def document_sources(self, collection_id: int) -> list[str]:
        rows = self._rows(
            "SELECT source FROM knowledge_documents WHERE collection_id = %s ORDER BY source",
            (collection_id,),
        )
        return [str(r[0]) for r in rows]

    def delete_document(self, collection_id: int, source: str) -> list[int]:
        self._count(
            collection_id,
            "-",
            "SELECT c.tokens FROM knowledge_chunks c "
            "JOIN knowledge_documents d ON d.id = c.document_id "
            "WHERE d.collection_id = %(collection)s AND d.source = %(source)s",
            {"source": source},
        )
        # the document's chunks go with it (ON DELETE CASCADE); their ids, for the index
        rows = self._rows(
            "WITH gone AS (DELETE FROM knowledge_documents "
            "WHERE collection_id = %s AND source = %s RETURNING id) "
            "SELECT c.id FROM knowledge_chunks c JOIN gone ON gone.id = c.document_id "
            "ORDER BY c.id",
            (collection_id, source),
        )
        return [int(r[0]) for r in rows]

    def insert_document(
        self,
        collection_id: int,
        source: str,
        content_hash: str,
        chunks: list[tuple[str, int, int, str]],
        vectors: np.ndarray,
    ) -> list[int]:
        if any("\x00" in text or "\x00" in heading for heading, _, _, text in chunks):
            raise ValueError(f"{source}: text with a NUL character (\\u0000) cannot be stored")
        with self._conn() as conn:
            row = conn.execute(
                "INSERT INTO knowledge_documents (collection_id, source, content_hash, "
                "ingested_at) VALUES (%s, %s, %s, %s) RETURNING id",
                (collection_id, source, content_hash, time.time()),
            ).fetchone()
            assert row is not None  # RETURNING of an INSERT always yields the row
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO knowledge_chunks (document_id, heading, start_at, end_at, "
                    "text, vector) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    [
                        (row[0], heading, start, end, text, vector.astype(np.float32).tobytes())
                        for (heading, start, end, text), vector in zip(chunks, vectors, strict=True)
                    ],
                    returning=True,
                )
                ids: list[int] = []
                while True:
                    ids.extend(int(r[0]) for r in cursor.fetchall())
                    if not cursor.nextset():
                        break
        self._count(
            collection_id,
            "+",
            "SELECT tokens FROM knowledge_chunks WHERE document_id = %(document)s",
            {"document": row[0]},
        )
        self._local.inserted = getattr(self._local, "inserted", 0) + len(ids)
        return ids

    def _count(self, collection_id: int, sign: str, chunks: str, params: dict[str, Any]) -> None:
        """Add (+) or take (-) `chunks`' count and tokens to the collection's, for BM25."""
        query = sql.SQL(
            "UPDATE knowledge_collections SET chunks = chunks {sign} s.n, "
            "tokens = tokens {sign} s.t FROM (SELECT count(*) AS n, "
            "coalesce(sum(tokens), 0) AS t FROM ({chunks}) AS c) AS s "
            "WHERE id = %(collection)s RETURNING id"
        ).format(sign=sql.SQL(sign), chunks=sql.SQL(chunks))
        self._rows(query, {"collection": collection_id, **params})

    def drop_collection(self, collection_id: int) -> None:
        with self.write_transaction():
            self._rows(
                "DELETE FROM knowledge_collections WHERE id = %s RETURNING id", (collection_id,)
            )

    def vectors_at(self, collection_id: int) -> tuple[int | None, np.ndarray, np.ndarray]:
        with database(self.url).connection() as conn, conn.transaction():
            # one snapshot: the generation and the vectors agree
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            generation = conn.execute(
                "SELECT generation FROM knowledge_collections WHERE id = %s", (collection_id,)
            ).fetchone()
            rows = conn.execute(
                "SELECT c.id, c.vector FROM knowledge_chunks c "
                "JOIN knowledge_documents d ON d.id = c.document_id "
                "WHERE d.collection_id = %s ORDER BY c.id",
                (collection_id,),
            ).fetchall()
        keys = np.array([r[0] for r in rows], dtype=np.uint64)
        vectors = (
            np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            if rows
            else np.zeros((0, 0), dtype=np.float32)
        )
        return (None if generation is None else int(generation[0])), keys, vectors

    def chunk_count(self, collection_id: int) -> int:
        return int(
            self._rows(
                "SELECT count(*) FROM knowledge_chunks c "
                "JOIN knowledge_documents d ON d.id = c.document_id WHERE d.collection_id = %s",
                (collection_id,),
            )[0][0]
        )

    def document_count(self, collection_id: int) -> int:
        return int(
            self._rows(
                "SELECT count(*) FROM knowledge_documents WHERE collection_id = %s",
                (collection_id,),
            )[0][0]
        )

    def full_text_search(
        self, collection_ids: list[int], words: list[str], limit: int
    ) -> list[int]:
        if not words:
            return []
        query = bm25_ranked(
            len(words),
            sql.SQL(
                "SELECT c.id, c.words, c.tokens FROM knowledge_chunks c "
                "JOIN knowledge_documents d ON d.id = c.document_id, q "
                "WHERE c.words @@ q.query AND d.collection_id = ANY(%(collections)s)"
            ),
            sql.SQL(
                "SELECT sum(chunks)::float8 AS n, sum(tokens)::float8 / "
                "greatest(sum(chunks), 1) AS avgdl FROM knowledge_collections "
                "WHERE id = ANY(%(collections)s)"
            ),
        )
        params: dict[str, Any] = {f"w{i}": w for i, w in enumerate(words)}
        params |= {"query_text": " ".join(words), "limit": limit, "collections": collection_ids}
        # never prepared: a generic plan does not know how rare the words are, and scans
        return [int(r[0]) for r in self._rows(query, params, prepare=False)]

    def get_chunks(self, ids: list[int]) -> dict[int, store.ChunkRow]:
        if not ids:
            return {}
        rows = self._rows(
            "SELECT c.id, d.source, c.heading, c.start_at, c.end_at, c.text "
            "FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id "
            "WHERE c.id = ANY(%s)",
            (ids,),
        )
        return {int(r[0]): store.ChunkRow(int(r[0]), *r[1:]) for r in rows}

    def get_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        rows = self._rows("SELECT id, vector FROM knowledge_chunks WHERE id = ANY(%s)", (ids,))
        return {int(r[0]): np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def close(self) -> None:
        """The pool is the process's, shared with other stores."""
