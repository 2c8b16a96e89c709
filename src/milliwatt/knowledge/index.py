"""The vector indexes of a knowledge database: one IVF index per collection, on disk.

One folder per collection and generation, `c<id>.g<generation>.ivf`, beside the database.
A folder is written whole under a temporary name and renamed into place, so a reader never
sees half of one; when the folder for the current generation is missing (an ingest died
between its commit and its save) or disagrees with the database, the index is rebuilt from
the vectors stored in the database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np

import milliwatt.knowledge.store as store
from milliwatt.knowledge.ivf import IvfIndex, build
from milliwatt.knowledge.stores import KnowledgeStore


class VectorIndexes:
    """The indexes of one database's collections, cached in memory per generation."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[int, tuple[int, IvfIndex]] = {}
        self._lock = threading.Lock()

    def path(self, collection_id: int, generation: int) -> Path:
        return self.directory / f"c{collection_id}.g{generation}.ivf"

    def search(
        self, db: KnowledgeStore, collection: store.Collection, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest chunks, nearest first."""
        keys, similarities = self.get(db, collection).search(vector, k)
        return [(int(key), float(sim)) for key, sim in zip(keys, similarities, strict=True)]

    def get(self, db: KnowledgeStore, collection: store.Collection) -> IvfIndex:
        with self._lock:
            cached = self._cache.get(collection.id)
            if cached is not None and cached[0] == collection.generation:
                return cached[1]
            index = self._load(db, collection) or self._rebuild(db, collection)
            self._cache[collection.id] = (collection.generation, index)
            return index

    def update(
        self,
        db: KnowledgeStore,
        before: store.Collection,
        after: store.Collection,
        removed: list[int],
        added: list[int],
        vectors: np.ndarray,
    ) -> None:
        """Carry an index from one committed generation to the next, then persist it."""
        with self._lock:
            cached = self._cache.get(before.id)
            index = cached[1] if cached and cached[0] == before.generation else None
            if index is None:
                index = self._load(db, before, check_count=False)
            if index is not None:
                index = index.updated(
                    np.array(removed, dtype=np.int64), np.array(added, dtype=np.int64), vectors
                )
                if len(index) != db.chunk_count(after.id):
                    index = None  # the old files did not match their generation after all
            if index is None:
                index = self._rebuild(db, after)
            else:
                index.save(self.path(after.id, after.generation))
            self._cache[after.id] = (after.generation, index)
            self._drop_older(after)

    def forget(self, collection_id: int) -> None:
        """Remove a dropped collection's files."""
        with self._lock:
            self._cache.pop(collection_id, None)
            for path in self.directory.glob(f"c{collection_id}.g*.ivf"):
                shutil.rmtree(path, ignore_errors=True)

    def _load(
        self, db: KnowledgeStore, collection: store.Collection, check_count: bool = True
    ) -> IvfIndex | None:
        path = self.path(collection.id, collection.generation)
        if not path.is_dir():
            return None
        try:
            index = IvfIndex.load(path)
        except (OSError, ValueError, KeyError):  # damaged files are rebuilt, never trusted
            return None
        if index.dimension != collection.dimension:
            return None
        if check_count and len(index) != db.chunk_count(collection.id):
            return None
        return index

    def _rebuild(self, db: KnowledgeStore, collection: store.Collection) -> IvfIndex:
        current, keys, vectors = db.vectors_at(collection.id)
        index = build(keys, vectors, collection.dimension)
        if current == collection.generation:
            index.save(self.path(collection.id, collection.generation))
        return index

    def _drop_older(self, collection: store.Collection) -> None:
        for path in self.directory.glob(f"c{collection.id}.g*.ivf"):
            if path != self.path(collection.id, collection.generation):
                shutil.rmtree(path, ignore_errors=True)
