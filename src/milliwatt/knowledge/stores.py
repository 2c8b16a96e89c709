"""The knowledge database as the rest of the package uses it: one interface, two backends.

`SqliteKnowledgeStore` wraps a connection to `<data_dir>/knowledge.db` (the statements are
store.py's); `postgres.PostgresKnowledgeStore` keeps the same rows in PostgreSQL. Either way
the rows are the source of truth, vectors included, and the IVF index beside them is derived.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

import numpy as np

import milliwatt.knowledge.store as store


class KnowledgeStore(Protocol):
    def write_transaction(self) -> AbstractContextManager[None]:
        """All or nothing, and one writer at a time: an exception inside rolls back."""
        ...

    def reading(self) -> AbstractContextManager[None]:
        """The reads inside share one connection (a search's few queries)."""
        ...

    def get_collection(self, key: store.CollectionKey) -> store.Collection | None: ...

    def list_collections(self, tenant: str, agent: str) -> list[store.Collection]: ...

    def ensure_collection(self, key: store.CollectionKey, dimension: int) -> store.Collection: ...

    def bump_generation(self, collection_id: int) -> int: ...

    def document_hash(self, collection_id: int, source: str) -> str | None: ...

    def document_sources(self, collection_id: int) -> list[str]: ...

    def delete_document(self, collection_id: int, source: str) -> list[int]: ...

    def insert_document(
        self,
        collection_id: int,
        source: str,
        content_hash: str,
        chunks: list[tuple[str, int, int, str]],
        vectors: np.ndarray,
    ) -> list[int]: ...

    def drop_collection(self, collection_id: int) -> None: ...

    def vectors_at(self, collection_id: int) -> tuple[int | None, np.ndarray, np.ndarray]:
        """The collection's generation with its chunk ids and vectors, read in one snapshot
        (generation None: the collection is gone)."""
        ...

    def chunk_count(self, collection_id: int) -> int: ...

    def document_count(self, collection_id: int) -> int: ...

    def full_text_search(
        self, collection_ids: list[int], words: list[str], limit: int
    ) -> list[int]:
        """Chunk ids holding any of the words, best first."""
        ...

    def get_chunks(self, ids: list[int]) -> dict[int, store.ChunkRow]: ...

    def get_vectors(self, ids: list[int]) -> dict[int, np.ndarray]: ...

    def close(self) -> None: ...


class SqliteKnowledgeStore:
    """One SQLite connection (a writer's, or one reading thread's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def write_transaction(self) -> AbstractContextManager[None]:
        return store.write_transaction(self.conn)

    def reading(self) -> AbstractContextManager[None]:
        return nullcontext()  # one connection already

    def get_collection(self, key: store.CollectionKey) -> store.Collection | None:
        return store.get_collection(self.conn, key)

    def list_collections(self, tenant: str, agent: str) -> list[store.Collection]:
        return store.list_collections(self.conn, tenant, agent)

    def ensure_collection(self, key: store.CollectionKey, dimension: int) -> store.Collection:
        return store.ensure_collection(self.conn, key, dimension)

    def bump_generation(self, collection_id: int) -> int:
        return store.bump_generation(self.conn, collection_id)

    def document_hash(self, collection_id: int, source: str) -> str | None:
        return store.document_hash(self.conn, collection_id, source)

    def document_sources(self, collection_id: int) -> list[str]:
        return store.document_sources(self.conn, collection_id)

    def delete_document(self, collection_id: int, source: str) -> list[int]:
        return store.delete_document(self.conn, collection_id, source)

    def insert_document(
        self,
        collection_id: int,
        source: str,
        content_hash: str,
        chunks: list[tuple[str, int, int, str]],
        vectors: np.ndarray,
    ) -> list[int]:
        return store.insert_document(
            self.conn, collection_id, source, content_hash, chunks, vectors
        )

    def drop_collection(self, collection_id: int) -> None:
        with self.write_transaction():
            self.conn.execute(
                "DELETE FROM chunks WHERE document_id IN "
                "(SELECT id FROM documents WHERE collection_id = ?)",
                (collection_id,),
            )
            self.conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    def vectors_at(self, collection_id: int) -> tuple[int | None, np.ndarray, np.ndarray]:
        with self._snapshot():
            row = self.conn.execute(
                "SELECT generation FROM collections WHERE id = ?", (collection_id,)
            ).fetchone()
            keys, vectors = store.all_vectors(self.conn, collection_id)
        return (None if row is None else int(row[0])), keys, vectors

    def chunk_count(self, collection_id: int) -> int:
        return store.chunk_count(self.conn, collection_id)

    def document_count(self, collection_id: int) -> int:
        return store.document_count(self.conn, collection_id)

    def full_text_search(
        self, collection_ids: list[int], words: list[str], limit: int
    ) -> list[int]:
        if not words:
            return []
        # each word quoted as an FTS5 string: its punctuation is never query syntax
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        return store.full_text_search(self.conn, collection_ids, match, limit)

    def get_chunks(self, ids: list[int]) -> dict[int, store.ChunkRow]:
        return store.get_chunks(self.conn, ids)

    def get_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        return store.get_vectors(self.conn, ids)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        self.conn.execute("BEGIN")  # one snapshot: the generation and the vectors agree
        try:
            yield
        finally:
            self.conn.execute("COMMIT")
