"""Retrieval benchmark: the vector index against exact search, hybrid latency, real ingest.

    python bench/rag.py [--n 100000] [--queries 500] [--tables 150] [--hnsw]

1. Index: N clustered 384-d unit vectors (documents cluster by topic; uniform random
   vectors would make every index look bad and mean nothing). recall@10 of each contender
   against exact numpy search over the same vectors, and single-query p50/p99, side by side:
   numpy brute force, the knowledge base's IVF index, and for comparison (when installed)
   sqlite-vec's brute-force vec0 table and, with --hnsw, usearch's HNSW.
2. Hybrid: the knowledge base's full query path (FTS5 BM25 + IVF + rank fusion) over N
   stored chunks, and the time to embed one question.
3. Ingest: real files, real embeddings: BIPIA email and table contexts from
   ../shared/corpora, ingested end to end (chunks/s); recall@10 of the IVF index on those
   real vectors, asked the tables' questions; the embedder on one BLAS thread against two.
The last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from milliwatt.knowledge import CollectionKey, KnowledgeBase
from milliwatt.knowledge import store as kstore
from milliwatt.knowledge.chunking import chunk_text
from milliwatt.knowledge.index import VectorIndexes
from milliwatt.knowledge.ivf import build
from milliwatt.knowledge.search import hybrid_search
from milliwatt.knowledge.stores import SqliteKnowledgeStore
from milliwatt.models.embeddings import Embedder, get_embedder

DIM = 384
K = 10
CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"


def clustered(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectors around 1,000 topic centres; queries drawn the same way (not from the data)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    labels = rng.integers(0, 1000, n + queries)
    points = centres[labels] + 0.35 * rng.standard_normal((n + queries, DIM)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points[:n], points[n:], labels


Timing = tuple[float, float, float]  # wall p50 ms, wall p99 ms, CPU p50 ms


def timed(fn: Callable[[Any], Any], queries: Sequence[Any]) -> tuple[list, Timing]:
    """Run each query alone, on one BLAS thread (as the knowledge base searches).

    CPU time is reported beside wall time: on a shared machine the wall clock includes time
    spent waiting for a core, the CPU time is the work a query itself costs.
    """
    results, wall, cpu = [], [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for q in queries:
            began, began_cpu = time.perf_counter(), time.process_time()
            results.append(fn(q))
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
    p50, p99 = np.percentile(wall, [50, 99]) * 1000
    return results, (float(p50), float(p99), float(np.median(cpu) * 1000))


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def bench_index(data: np.ndarray, queries: np.ndarray, hnsw: bool) -> dict[str, float]:
    print(f"index: {len(data):,} x {DIM} clustered vectors, {len(queries)} queries, recall@{K}")
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :K]

    def exact(q: np.ndarray) -> list[int]:
        scores = data @ q
        return np.argpartition(-scores, K)[:K].tolist()

    rows: dict[str, tuple[float, float, float, float, float]] = {}
    found, timing = timed(exact, queries)
    rows["numpy exact"] = (0.0, recall(found, truth), *timing)
    began = time.perf_counter()
    index = build(np.arange(len(data)), data, DIM)
    build_s = time.perf_counter() - began
    found, timing = timed(lambda q: index.search(q, K)[0].tolist(), queries)
    rows["numpy IVF (used)"] = (build_s, recall(found, truth), *timing)
    hnsw_row = _bench_usearch(data, queries, truth) if hnsw else None
    if hnsw_row is not None:
        rows["usearch HNSW f16"] = hnsw_row
    sqlite_vec_row = _bench_sqlite_vec(data, queries[:50], truth[:50])
    if sqlite_vec_row is not None:
        rows["sqlite-vec vec0 (brute force)"] = sqlite_vec_row
    exact_p50 = rows["numpy exact"][2]
    exact_cpu = rows["numpy exact"][4]
    print(
        f"  {'':30} {'build s':>8} {'recall':>7} {'p50 ms':>8} {'p99 ms':>8} {'vs exact':>9}"
        f" {'cpu p50 ms':>11} {'vs exact':>9}"
    )
    for name, (seconds, rec, p50, p99, cpu) in rows.items():
        print(
            f"  {name:30} {seconds:8.1f} {rec:7.3f} {p50:8.3f} {p99:8.3f} {exact_p50 / p50:8.1f}x"
            f" {cpu:11.3f} {exact_cpu / cpu:8.1f}x"
        )
    used = rows["numpy IVF (used)"]
    return {
        "recall_at_10": used[1],
        "index_p50_ms": used[2],
        "index_p99_ms": used[3],
        "index_build_s": used[0],
        "index_cpu_p50_ms": used[4],
        "exact_p50_ms": exact_p50,
        "speedup_vs_exact": exact_p50 / used[2],
    }


def _bench_usearch(
    data: np.ndarray, queries: np.ndarray, truth: np.ndarray
) -> tuple[float, float, float, float, float] | None:
    try:
        from usearch.index import Index
    except ImportError:
        print("  (usearch row skipped: pip install usearch to include it)")
        return None
    index = Index(ndim=DIM, metric="cos", dtype="f16", connectivity=16, expansion_add=64)
    index.expansion_search = 128
    began = time.perf_counter()
    index.add(np.arange(len(data), dtype=np.uint64), data)
    build_s = time.perf_counter() - began
    found, timing = timed(lambda q: index.search(q, K).keys.tolist(), queries)
    return build_s, recall(found, truth), *timing


def _bench_sqlite_vec(
    data: np.ndarray, queries: np.ndarray, truth: np.ndarray
) -> tuple[float, float, float, float, float] | None:
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        print("  (sqlite-vec row skipped: pip install apsw sqlite-vec to include it)")
        return None
    conn = apsw.Connection(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(
        f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{DIM}] distance_metric=cosine)"
    )
    began = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO v(rowid, embedding) VALUES (?, ?)",
            ((i, row.tobytes()) for i, row in enumerate(data)),
        )
    build = time.perf_counter() - began
    sql = f"SELECT rowid FROM v WHERE embedding MATCH ? AND k = {K}"
    found, timing = timed(lambda q: [r[0] for r in conn.execute(sql, (q.tobytes(),))], queries)
    return build, recall(found, truth), *timing


def bench_hybrid(data: np.ndarray, queries: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The full query path over N chunks whose words, like their vectors, follow topics."""
    rng = np.random.default_rng(1)
    vocabulary = [f"t{topic}w{w}" for topic in range(1000) for w in range(30)]
    common = [f"common{w}" for w in range(300)]
    with tempfile.TemporaryDirectory() as tmp:
        conn = kstore.connect(Path(tmp) / "knowledge.db")
        began = time.perf_counter()
        with kstore.write_transaction(conn):
            collection = kstore.ensure_collection(conn, CollectionKey("b", "b", "b"), DIM)
            for start in range(0, len(data), 1000):
                chunks = []
                for i in range(start, min(start + 1000, len(data))):
                    topical = rng.integers(0, 30, 20) + 30 * labels[i]
                    words = [vocabulary[t] for t in topical] + list(rng.choice(common, 15))
                    chunks.append(("heading", 0, 0, " ".join(words)))
                kstore.insert_document(
                    conn, collection.id, f"doc{start}", "h", chunks, data[start : start + 1000]
                )
            kstore.bump_generation(conn, collection.id)
        stored = time.perf_counter() - began
        collection = kstore.get_collection(conn, CollectionKey("b", "b", "b"))
        assert collection is not None
        indexes = VectorIndexes(Path(tmp) / "index")
        began = time.perf_counter()
        db = SqliteKnowledgeStore(conn)
        indexes.get(db, collection)  # rebuilt from the stored vectors, as after a crash
        rebuilt = time.perf_counter() - began
        asked = [
            (queries[i], " ".join(vocabulary[t] for t in rng.integers(0, 30, 3) + 30 * label))
            for i, label in enumerate(labels[len(data) : len(data) + 200])
        ]
        _, (p50, p99, cpu) = timed(
            lambda a: hybrid_search(db, indexes, [collection], a[1], a[0], k=5), asked
        )
        conn.close()
    embedder = get_embedder()
    embed_ms = []
    for question in ("How long does the battery last?", "Where do I send the invoice?") * 10:
        began = time.perf_counter()
        embedder.embed([question])
        embed_ms.append((time.perf_counter() - began) * 1000)
    print(
        f"hybrid: {len(data):,} chunks stored in {stored:.1f} s, index rebuilt from SQLite in "
        f"{rebuilt:.1f} s; query (FTS5 + IVF + fusion) p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"cpu p50 {cpu:.2f} ms; embedding a question p50 {np.median(embed_ms):.1f} ms"
    )
    return {
        "hybrid_p50_ms": p50,
        "hybrid_p99_ms": p99,
        "hybrid_cpu_p50_ms": cpu,
        "embed_query_ms": float(np.median(embed_ms)),
    }


def bench_ingest(tables: int) -> dict[str, float]:
    bipia = CORPORA / "injection" / "bipia"
    if not bipia.is_dir():
        print(f"ingest: skipped, no corpus at {bipia}")
        return {}
    rows = [json.loads(line) for line in (bipia / "email" / "train.jsonl").open()]
    rows += [json.loads(line) for line in (bipia / "table" / "train.jsonl").open()][:tables]
    texts = [row["context"] for row in rows]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        for i, text in enumerate(texts):
            (folder / f"doc{i:04}.md").write_text(text, encoding="utf-8")
        kb = KnowledgeBase(Path(tmp) / "data", get_embedder())
        key = CollectionKey("bench", "bench", "bipia")
        report = kb.ingest([folder], key)
        again = kb.ingest([folder], key)
        kb.close()
        real_recall = _real_recall(Path(tmp) / "data" / "knowledge.db", key, rows[50:])
    print(
        f"ingest: {len(rows)} BIPIA documents (50 emails, {len(rows) - 50} tables) -> "
        f"{report.chunks} chunks in {report.seconds:.1f} s = {report.chunks_per_second:.1f} "
        f"chunks/s (load, chunk, embed, store, index); unchanged re-ingest "
        f"{again.seconds * 1000:.0f} ms"
    )
    sample = [c.text for t in texts[50:80] for c in chunk_text(t)][:16]
    rates = {}
    for threads in (1, 2):
        embedder = Embedder(threads=threads)
        began = time.perf_counter()
        embedder.embed(sample)
        rates[threads] = len(sample) / (time.perf_counter() - began)
    print(
        f"embedding {len(sample)} table chunks: {rates[1]:.1f} chunks/s with 1 BLAS thread, "
        f"{rates[2]:.1f} with 2 ({rates[2] / rates[1]:.2f}x)"
    )
    return {
        "real_recall_at_10": real_recall,
        "ingest_chunks_per_s": report.chunks_per_second,
        "embed_1thread_per_s": rates[1],
        "embed_2threads_per_s": rates[2],
    }


def _real_recall(database: Path, key: CollectionKey, tables: list[dict[str, str]]) -> float:
    """recall@10 of the IVF index, forced on however small, over the ingested real chunks,
    asked the tables' own questions (real text: less neatly clustered than the synthetic)."""
    conn = kstore.connect(database)
    collection = kstore.get_collection(conn, key)
    assert collection is not None
    keys, vectors = kstore.all_vectors(conn, collection.id)
    conn.close()
    questions = get_embedder().embed([row["question"] for row in tables])
    index = build(keys, vectors, DIM, exact_below=0)
    truth = [keys[np.argsort(-(vectors @ q))[:K]].tolist() for q in questions]
    found, _ = timed(lambda q: index.search(q, K)[0].tolist(), questions)
    value = recall(found, np.array(truth))
    print(
        f"real embeddings: {len(keys)} chunks in {len(index.centroids)} groups, "
        f"{len(questions)} questions: recall@10 {value:.3f}"
    )
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors / chunks")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--tables", type=int, default=150, help="BIPIA tables to ingest")
    parser.add_argument(
        "--hnsw", action="store_true", help="add usearch HNSW (builds take minutes on 2 cores)"
    )
    args = parser.parse_args()
    print(
        f"sqlite {sqlite3.sqlite_version}, numpy {np.__version__}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} (other work on the machine slows wall times)"
    )
    data, queries, labels = clustered(args.n, args.queries)
    figures = {"n": args.n}
    figures.update(bench_index(data, queries, args.hnsw))
    figures.update(bench_hybrid(data, queries, labels))
    figures.update(bench_ingest(args.tables))
    figures["load_avg"] = os.getloadavg()[0]
    print(
        " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    )


if __name__ == "__main__":
    main()
