"""The numpy IVF index against exact search over the same vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from milliwatt.knowledge import ivf
from milliwatt.knowledge.ivf import EXACT_BELOW, IvfIndex, build

DIM = 64


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, DIM))
    points = centres[rng.integers(0, 200, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _exact(vectors: np.ndarray, keys: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return keys[np.argsort(-(vectors @ query), kind="stable")[:k]].tolist()


def test_small_index_is_exact() -> None:
    vectors = _clustered(3000)
    keys = np.arange(100, 3100)
    index = build(keys, vectors, DIM)
    assert len(index.centroids) == 1
    for query in _clustered(20, seed=1):
        found, sims = index.search(query, 10)
        assert found.tolist() == _exact(vectors, keys, query, 10)
        assert np.all(np.diff(sims) <= 0)


def test_large_index_recall_against_exact_search() -> None:
    vectors = _clustered(EXACT_BELOW + 5000)
    keys = np.arange(len(vectors))
    index = build(keys, vectors, DIM)
    assert len(index.centroids) == int(4 * np.sqrt(len(vectors)))
    assert sorted(index.keys.tolist()) == keys.tolist()  # every vector is in one group
    queries = _clustered(100, seed=2)
    hits = sum(
        len(set(index.search(q, 10)[0].tolist()) & set(_exact(vectors, keys, q, 10)))
        for q in queries
    )
    assert hits / (10 * len(queries)) >= 0.95


def test_updates_remove_and_add() -> None:
    vectors = _clustered(500)
    index = build(np.arange(500), vectors, DIM)
    target = vectors[7]
    assert index.search(target, 1)[0].tolist() == [7]
    changed = index.updated(np.array([7]), np.array([9000]), target[None, :])
    assert changed.search(target, 1)[0].tolist() == [9000]
    assert len(changed) == 500 and 7 not in changed.keys.tolist()
    assert len(index) == 500 and 7 in index.keys.tolist()  # the old index is untouched


def test_growing_past_the_exact_limit_trains_groups() -> None:
    vectors = _clustered(EXACT_BELOW + 10)
    small = build(np.arange(100), vectors[:100], DIM)
    grown = small.updated(np.array([], dtype=np.int64), np.arange(100, len(vectors)), vectors[100:])
    assert len(grown.centroids) > 1 and len(grown) == len(vectors)


def test_save_and_load(tmp_path: Path) -> None:
    vectors = _clustered(EXACT_BELOW + 100)
    index = build(np.arange(len(vectors)), vectors, DIM)
    path = tmp_path / "c1.g1.ivf"
    index.save(path)
    index.save(path)  # saving the same generation again is harmless
    assert [p.name for p in tmp_path.iterdir()] == ["c1.g1.ivf"]  # no temporary left behind
    loaded = IvfIndex.load(path)
    assert isinstance(loaded.vectors, np.memmap)
    query = vectors[42]
    assert loaded.search(query, 5)[0].tolist() == index.search(query, 5)[0].tolist()
    (path / "meta.json").write_text('{"trained_size": 1, "size": 3}')
    with pytest.raises(ValueError, match="disagree"):
        IvfIndex.load(path)


def test_probe_count_follows_fraction(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = _clustered(EXACT_BELOW + 100)
    index = build(np.arange(len(vectors)), vectors, DIM)
    monkeypatch.setattr(ivf, "PROBE_FRACTION", 1.0)  # every group: exact again
    for query in _clustered(5, seed=3):
        assert index.search(query, 10)[0].tolist() == _exact(
            vectors, np.arange(len(vectors)), query, 10
        )
