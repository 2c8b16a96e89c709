"""Nearest-neighbour search over a collection's chunk vectors: usearch HNSW, on disk.

One index file per collection and generation, `c<id>.g<generation>.usearch`, beside the
database. A file is written whole under a temporary name and renamed into place, so a
reader never sees half of one; when the file for the current generation is missing (an
ingest died between its commit and its save) or disagrees with the database, the index is
rebuilt from the vectors stored in SQLite. See docs/knowledge.md for why HNSW.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from milliwatt.knowledge import store

if TYPE_CHECKING:
    from usearch.index import Index

# below this many vectors an exact scan costs about a millisecond: recall 1.0 for free
EXACT_BELOW = 10_000
# HNSW settings measured in bench/rag.py: recall@10 ~0.99 at 100k vectors, p50 well under 1 ms
CONNECTIVITY = 16
EXPANSION_ADD = 64
EXPANSION_SEARCH = 128


def _usearch() -> type[Index]:
    # Imported on first use, never at import time: usearch's wheel carries its own static
    # C++ runtime, and a llama.cpp model first loaded after it fails (std::bad_cast in the
    # vocabulary). Processes that answer with a model load it before any search.
    from usearch.index import Index

    return Index


def _new_index(dimension: int) -> Index:
    # half precision halves memory with a recall cost under 1% (bench/rag.py)
    return _usearch()(
        ndim=dimension,
        metric="cos",
        dtype="f16",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


def build_index(keys: np.ndarray, vectors: np.ndarray, dimension: int, threads: int = 0) -> Index:
    index = _new_index(dimension)
    if len(keys):
        index.add(keys, vectors, threads=threads)
    return index


class VectorIndexes:
    """The HNSW indexes of one database's collections, cached in memory per generation."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[int, tuple[int, Index]] = {}
        self._lock = threading.Lock()

    def path(self, collection_id: int, generation: int) -> Path:
        return self.directory / f"c{collection_id}.g{generation}.usearch"

    def search(
        self, conn: sqlite3.Connection, collection: store.Collection, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest chunks, nearest first."""
        index = self.get(conn, collection)
        if len(index) == 0:
            return []
        matches = index.search(vector, min(k, len(index)), exact=len(index) < EXACT_BELOW)
        return [
            (int(key), 1.0 - float(distance))
            for key, distance in zip(matches.keys, matches.distances, strict=True)
        ]

    def get(self, conn: sqlite3.Connection, collection: store.Collection) -> Index:
        with self._lock:
            cached = self._cache.get(collection.id)
            if cached is not None and cached[0] == collection.generation:
                return cached[1]
            index = self._load(conn, collection) or self._rebuild(conn, collection)
            self._cache[collection.id] = (collection.generation, index)
            return index

    def update(
        self,
        conn: sqlite3.Connection,
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
                index = self._load(conn, before, check_count=False)
            if index is not None:
                if removed:
                    index.remove(np.array(removed, dtype=np.uint64))
                if added:
                    index.add(np.array(added, dtype=np.uint64), vectors)
                if len(index) != store.chunk_count(conn, after.id):
                    index = None  # the old file did not match its generation after all
            if index is None:
                index = self._rebuild(conn, after)
            else:
                self._save(index, after)
            self._cache[after.id] = (after.generation, index)
            self._drop_older(after)

    def forget(self, collection_id: int) -> None:
        """Remove a dropped collection's files."""
        with self._lock:
            self._cache.pop(collection_id, None)
            for path in self.directory.glob(f"c{collection_id}.g*.usearch"):
                path.unlink(missing_ok=True)

    def _load(
        self,
        conn: sqlite3.Connection,
        collection: store.Collection,
        check_count: bool = True,
    ) -> Index | None:
        path = self.path(collection.id, collection.generation)
        if not path.is_file():
            return None
        try:
            index = _usearch().restore(str(path))
        except Exception:  # a damaged file is rebuilt, never trusted
            return None
        if index is None or index.ndim != collection.dimension:
            return None
        if check_count and len(index) != store.chunk_count(conn, collection.id):
            return None
        index.expansion_search = EXPANSION_SEARCH
        return index

    def _rebuild(self, conn: sqlite3.Connection, collection: store.Collection) -> Index:
        conn.execute("BEGIN")  # one snapshot: the generation and the vectors agree
        try:
            current = conn.execute(
                "SELECT generation FROM collections WHERE id = ?", (collection.id,)
            ).fetchone()
            keys, vectors = store.all_vectors(conn, collection.id)
        finally:
            conn.execute("COMMIT")
        index = build_index(keys, vectors, collection.dimension)
        if current is not None and current[0] == collection.generation:
            self._save(index, collection)
        return index

    def _save(self, index: Index, collection: store.Collection) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path(collection.id, collection.generation)
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        index.save(str(temporary))
        os.replace(temporary, final)

    def _drop_older(self, collection: store.Collection) -> None:
        for path in self.directory.glob(f"c{collection.id}.g*.usearch"):
            if path != self.path(collection.id, collection.generation):
                path.unlink(missing_ok=True)
