"""KnowledgeBase: one data directory's documents, ingested and searched."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import milliwatt.knowledge.store as store
from milliwatt.knowledge.index import VectorIndexes
from milliwatt.knowledge.ingest import IngestReport, ProgressCallback, UrlFetcher, ingest
from milliwatt.knowledge.search import Passage, hybrid_search, pick_answer
from milliwatt.models.embeddings import Embedder, get_embedder

DATABASE_NAME = "knowledge.db"
INDEX_FOLDER = "knowledge-index"


@dataclass(frozen=True)
class CollectionInfo:
    key: store.CollectionKey
    documents: int
    chunks: int


class UnknownCollectionError(LookupError):
    def __str__(self) -> str:
        return f"no collection {self.args[0]}; ingest documents into it first"


class KnowledgeBase:
    """Documents under `<directory>/knowledge.db`, their vector indexes beside it.

    Reads use one SQLite connection per thread (WAL lets them run during an ingest);
    ingests are serialised on a writer connection.
    """

    def __init__(self, directory: Path, embedder: Embedder | None = None) -> None:
        self.directory = directory
        self.path = directory / DATABASE_NAME
        self._embedder = embedder
        self._writer = store.connect(self.path)
        self._write_lock = threading.Lock()
        self._readers = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._indexes = VectorIndexes(directory / INDEX_FOLDER)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder()
        return self._embedder

    def ingest(
        self,
        sources: Sequence[str | Path],
        collection: store.CollectionKey,
        *,
        fetch_url: UrlFetcher | None = None,
        progress: ProgressCallback | None = None,
        prune: bool = False,
    ) -> IngestReport:
        with self._write_lock:
            return ingest(
                self._writer,
                self._indexes,
                self.embedder,
                collection,
                sources,
                fetch_url=fetch_url,
                progress=progress,
                prune=prune,
            )

    def search(
        self,
        query: str,
        collections: store.CollectionKey | Sequence[store.CollectionKey],
        k: int = 5,
    ) -> list[Passage]:
        """The k passages that best match the query, by hybrid (BM25 + vector) ranking."""
        return self._search(query, collections, k)[0]

    def best_passage(
        self,
        question: str,
        collections: store.CollectionKey | Sequence[store.CollectionKey],
    ) -> Passage | None:
        """A passage that clearly answers the question on its own, or None.

        The thresholds are deliberately strict (see `search.pick_answer`): answering
        without a model is only worth it when the answer is unmistakable.
        """
        passages, vector_rank, text_rank = self._search(question, collections, 5)
        return pick_answer(question, passages, vector_rank, text_rank)

    def collection_keys(self, tenant: str, agent: str) -> list[store.CollectionKey]:
        """An agent's collections, without counting what they hold (asked per request)."""
        return [c.key for c in store.list_collections(self._reader(), tenant, agent)]

    def collections(self, tenant: str, agent: str) -> list[CollectionInfo]:
        conn = self._reader()
        return [
            CollectionInfo(c.key, store.document_count(conn, c.id), store.chunk_count(conn, c.id))
            for c in store.list_collections(conn, tenant, agent)
        ]

    def drop(self, collection: store.CollectionKey) -> None:
        with self._write_lock:
            found = store.get_collection(self._writer, collection)
            if found is None:
                raise UnknownCollectionError(collection)
            with store.write_transaction(self._writer):
                self._writer.execute(
                    "DELETE FROM chunks WHERE document_id IN "
                    "(SELECT id FROM documents WHERE collection_id = ?)",
                    (found.id,),
                )
                self._writer.execute("DELETE FROM collections WHERE id = ?", (found.id,))
            self._indexes.forget(found.id)

    def close(self) -> None:
        self._writer.close()
        for conn in self._reader_conns:
            conn.close()

    def _search(
        self,
        query: str,
        collections: store.CollectionKey | Sequence[store.CollectionKey],
        k: int,
    ) -> tuple[list[Passage], dict[int, int], dict[int, int]]:
        if not query.strip():
            raise ValueError("the query is empty")
        keys = [collections] if isinstance(collections, store.CollectionKey) else collections
        conn = self._reader()
        found = [c for c in (store.get_collection(conn, key) for key in keys) if c is not None]
        if isinstance(collections, store.CollectionKey) and not found:
            raise UnknownCollectionError(collections)
        if not found:
            return [], {}, {}
        vector = self.embedder.embed([query])[0]
        return hybrid_search(conn, self._indexes, found, query, vector, k)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = store.connect(self.path)
            self._readers.conn = conn
            self._reader_conns.append(conn)
        return conn


@lru_cache(maxsize=8)
def open_knowledge_base(directory: Path) -> KnowledgeBase:
    """The shared KnowledgeBase of a data directory (tools and the router use this)."""
    return KnowledgeBase(directory)


def best_passage(
    question: str,
    collections: store.CollectionKey | Sequence[store.CollectionKey],
    data_dir: Path,
) -> Passage | None:
    """For the router: a passage that answers the question outright, with its citation.

    None when no passage clearly answers (or no listed collection exists yet); then the
    model should answer from `knowledge.search` passages instead.
    """
    keys = [collections] if isinstance(collections, store.CollectionKey) else list(collections)
    return open_knowledge_base(data_dir).best_passage(question, keys)
