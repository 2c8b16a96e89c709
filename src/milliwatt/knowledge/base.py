"""KnowledgeBase: one data directory's documents, ingested and searched."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import milliwatt.knowledge.store as store
from milliwatt.knowledge.index import VectorIndexes
from milliwatt.knowledge.ingest import IngestReport, ProgressCallback, UrlFetcher, ingest
from milliwatt.knowledge.search import Passage, hybrid_search, pick_answer
from milliwatt.knowledge.stores import KnowledgeStore, SqliteKnowledgeStore
from milliwatt.models.embeddings import Embedder, get_embedder
from milliwatt.storage.url import parse_storage_url, redact

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
    """Documents under `<directory>/knowledge.db`, or in the PostgreSQL database of
    `storage_url`; their vector indexes in files under `directory`.

    SQLite: reads use one connection per thread (WAL lets them run during an ingest);
    ingests are serialised on a writer connection. PostgreSQL: pooled connections, ingests
    serialised across every node by an advisory lock.
    """

    def __init__(
        self, directory: Path, embedder: Embedder | None = None, storage_url: str | None = None
    ) -> None:
        self.directory = directory
        self.path = directory / DATABASE_NAME
        self._embedder = embedder
        self._write_lock = threading.Lock()
        self._readers = threading.local()
        self._reader_stores: list[KnowledgeStore] = []
        target = parse_storage_url(storage_url)
        self._shared: KnowledgeStore | None = None
        self._writer: KnowledgeStore
        if target.backend == "postgres" and target.url is not None:
            # imported here: psycopg is the `postgres` extra, never needed for SQLite
            from milliwatt.knowledge.postgres import PostgresKnowledgeStore

            self._shared = self._writer = PostgresKnowledgeStore(target.url)
            # collection ids are the database's: its indexes never mix with another's
            digest = hashlib.sha256(redact(target.url).encode()).hexdigest()[:12]
            self._indexes = VectorIndexes(directory / f"{INDEX_FOLDER}-pg-{digest}")
        else:
            self._writer = SqliteKnowledgeStore(store.connect(self.path))
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
        return [c.key for c in self._reader().list_collections(tenant, agent)]

    def collections(self, tenant: str, agent: str) -> list[CollectionInfo]:
        db = self._reader()
        return [
            CollectionInfo(c.key, db.document_count(c.id), db.chunk_count(c.id))
            for c in db.list_collections(tenant, agent)
        ]

    def drop(self, collection: store.CollectionKey) -> None:
        with self._write_lock:
            found = self._writer.get_collection(collection)
            if found is None:
                raise UnknownCollectionError(collection)
            self._writer.drop_collection(found.id)
            self._indexes.forget(found.id)

    def close(self) -> None:
        self._writer.close()
        for reader in self._reader_stores:
            reader.close()

    def _search(
        self,
        query: str,
        collections: store.CollectionKey | Sequence[store.CollectionKey],
        k: int,
    ) -> tuple[list[Passage], dict[int, int], dict[int, int]]:
        if not query.strip():
            raise ValueError("the query is empty")
        keys = [collections] if isinstance(collections, store.CollectionKey) else collections
        db = self._reader()
        found = [c for c in (db.get_collection(key) for key in keys) if c is not None]
        if isinstance(collections, store.CollectionKey) and not found:
            raise UnknownCollectionError(collections)
        if not found:
            return [], {}, {}
        vector = self.embedder.embed([query])[0]
        return hybrid_search(db, self._indexes, found, query, vector, k)

    def _reader(self) -> KnowledgeStore:
        if self._shared is not None:  # a pool: every thread takes its own connection
            return self._shared
        reader: KnowledgeStore | None = getattr(self._readers, "store", None)
        if reader is None:
            reader = SqliteKnowledgeStore(store.connect(self.path))
            self._readers.store = reader
            self._reader_stores.append(reader)
        return reader


@lru_cache(maxsize=8)
def open_knowledge_base(directory: Path, storage_url: str | None = None) -> KnowledgeBase:
    """The shared KnowledgeBase of a data directory, or of the PostgreSQL database
    `[storage] url` names (tools and the router use this)."""
    return KnowledgeBase(directory, storage_url=storage_url)


def best_passage(
    question: str,
    collections: store.CollectionKey | Sequence[store.CollectionKey],
    data_dir: Path,
    storage_url: str | None = None,
) -> Passage | None:
    """For the router: a passage that answers the question outright, with its citation.

    None when no passage clearly answers (or no listed collection exists yet); then the
    model should answer from `knowledge.search` passages instead.
    """
    keys = [collections] if isinstance(collections, store.CollectionKey) else list(collections)
    return open_knowledge_base(data_dir, storage_url).best_passage(question, keys)
