"""An inverted-file (IVF) vector index in plain numpy: k-means lists, scanned exactly.

Vectors are grouped by their nearest of ~4*sqrt(n) centroids and stored contiguously per
group. A query scores the centroids, then scans only the closest groups with one matrix
product each. Below EXACT_BELOW vectors there is a single group, so search is exact.

Plain numpy rather than a native ANN library: usearch's HNSW wheel carries its own C++
runtime, and importing it before llama.cpp loads a model in the same process breaks that
load (see docs/knowledge.md). The arrays are saved as .npy files and memory-mapped on load.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

EXACT_BELOW = 20_000  # an exact scan of this many 384-d vectors takes about a millisecond
# 4*sqrt(n) groups, an eighth of them scanned: recall@10 0.956 on real MiniLM embeddings of
# BIPIA tables against their questions (2*sqrt(n) and a twelfth gave 0.90); docs/knowledge.md
GROUPS_PER_SQRT_N = 4
PROBE_FRACTION = 1 / 8
MIN_PROBES = 8
KMEANS_SAMPLE = 64_000  # centroids are trained on a sample: ~50 points per group at 100k
KMEANS_ROUNDS = 8
RETRAIN_GROWTH = 2.0  # retrain the centroids once the index doubles since the last training


@dataclass(frozen=True)
class IvfIndex:
    centroids: np.ndarray  # (groups, dim) float32; one zero row for an exact (flat) index
    offsets: np.ndarray  # (groups + 1,) int64: group g holds rows offsets[g]:offsets[g + 1]
    keys: np.ndarray  # (n,) int64 chunk ids, grouped
    vectors: np.ndarray  # (n, dim) float32 unit rows, grouped
    trained_size: int  # how many vectors the centroids were trained on

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dimension(self) -> int:
        return int(self.centroids.shape[1])

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, cosine similarities) of the k nearest vectors, nearest first."""
        # one BLAS thread: the products are small, and on busy cores a second OpenBLAS
        # thread only spins against other work
        with _blas().limit(limits=1, user_api="blas"):
            return self._search(query, k)

    def _search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        groups = len(self.centroids)
        if groups == 1:
            scores, keys = self.vectors @ query, self.keys
        else:
            probes = min(groups, max(MIN_PROBES, int(groups * PROBE_FRACTION)))
            closeness = self.centroids @ query
            nearest = (
                np.argpartition(-closeness, probes - 1)[:probes]
                if probes < groups
                else np.arange(groups)
            )
            spans = [(self.offsets[g], self.offsets[g + 1]) for g in nearest]
            scores = np.concatenate([self.vectors[a:b] @ query for a, b in spans])
            keys = np.concatenate([self.keys[a:b] for a, b in spans])
        k = min(k, len(scores))
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return np.asarray(keys[top]), np.asarray(scores[top])

    def updated(self, removed: np.ndarray, keys: np.ndarray, vectors: np.ndarray) -> IvfIndex:
        """A new index without the removed keys and with the added vectors."""
        groups = np.repeat(np.arange(len(self.centroids)), np.diff(self.offsets))
        keep = ~np.isin(self.keys, removed)
        all_keys = np.concatenate([self.keys[keep], keys.astype(np.int64)])
        all_vectors = np.concatenate([self.vectors[keep], vectors.astype(np.float32)])
        size = len(all_keys)
        flat = len(self.centroids) == 1
        if (flat and size >= EXACT_BELOW) or (not flat and size < EXACT_BELOW):
            return build(all_keys, all_vectors, self.dimension)
        if not flat and size > RETRAIN_GROWTH * self.trained_size:
            return build(all_keys, all_vectors, self.dimension)
        all_groups = np.concatenate([groups[keep], _assign(vectors, self.centroids)])
        return _grouped(self.centroids, all_groups, all_keys, all_vectors, self.trained_size)

    def save(self, path: Path) -> None:
        """Write atomically: a folder of .npy files built aside, then renamed into place."""
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        temporary.mkdir(parents=True)
        try:
            for name in ("centroids", "offsets", "keys", "vectors"):
                np.save(temporary / f"{name}.npy", getattr(self, name))
            meta = {"trained_size": self.trained_size, "size": len(self)}
            (temporary / "meta.json").write_text(json.dumps(meta))
            try:
                os.rename(temporary, path)
            except OSError:
                if not path.is_dir():
                    raise
                # another process saved this generation first: the same rows, the same index
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    @classmethod
    def load(cls, path: Path) -> IvfIndex:
        meta = json.loads((path / "meta.json").read_text())
        index = cls(
            centroids=np.load(path / "centroids.npy"),
            offsets=np.load(path / "offsets.npy"),
            keys=np.load(path / "keys.npy", mmap_mode="r"),
            vectors=np.load(path / "vectors.npy", mmap_mode="r"),
            trained_size=int(meta["trained_size"]),
        )
        if len(index) != meta["size"] or index.offsets[-1] != len(index):
            raise ValueError(f"{path}: the index files disagree with each other")
        return index


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def build(
    keys: np.ndarray,
    vectors: np.ndarray,
    dimension: int,
    seed: int = 0,
    exact_below: int = EXACT_BELOW,
) -> IvfIndex:
    keys = np.asarray(keys, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(keys), dimension)
    if len(keys) < exact_below:
        flat = np.zeros((1, dimension), dtype=np.float32)
        return _grouped(flat, np.zeros(len(keys), dtype=np.int64), keys, vectors, len(keys))
    groups = max(1, min(len(keys), int(GROUPS_PER_SQRT_N * np.sqrt(len(keys)))))
    centroids = _kmeans(vectors, groups, seed)
    return _grouped(centroids, _assign(vectors, centroids), keys, vectors, len(keys))


def _grouped(
    centroids: np.ndarray, groups: np.ndarray, keys: np.ndarray, vectors: np.ndarray, trained: int
) -> IvfIndex:
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups, minlength=len(centroids))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return IvfIndex(centroids, offsets, keys[order], vectors[order], trained)


def _kmeans(vectors: np.ndarray, groups: int, seed: int) -> np.ndarray:
    """Spherical k-means (cosine) on a sample; empty groups are re-seeded at random."""
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), KMEANS_SAMPLE), replace=False)]
    centroids = sample[rng.choice(len(sample), groups, replace=False)].copy()
    for _ in range(KMEANS_ROUNDS):
        labels = _assign(sample, centroids)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=groups)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        empty = counts == 0
        sums = np.zeros_like(centroids)
        sums[~empty] = np.add.reduceat(sample[order], starts[~empty], axis=0)
        sums[empty] = sample[rng.choice(len(sample), int(empty.sum()), replace=False)]
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return centroids.astype(np.float32)


def _assign(vectors: np.ndarray, centroids: np.ndarray, block: int = 8192) -> np.ndarray:
    labels = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), block):
        labels[start : start + block] = np.argmax(vectors[start : start + block] @ centroids.T, 1)
    return labels
