"""Storage backends side by side in one run: one turn's durable write, and one hybrid
knowledge search, on SQLite and on PostgreSQL.

    python bench/storage_turns.py [--turns 400] [--chunks 20000] [--searches 300]
                                  [--postgres postgresql://postgres@127.0.0.1:5432/test]

1. Turns: the session stores `[storage] url` selects. SQLite in WAL with synchronous=FULL
   (an fsync per commit); PostgreSQL with synchronous_commit=on (the server flushes its WAL
   before the commit returns), over loopback TCP. Writes alternate between the stores, so
   load on the machine falls on both alike.
2. Knowledge: --chunks synthetic chunks (vectors around 1,000 topics, words that follow the
   topics) stored through each backend's knowledge store, the IVF index built from the stored
   rows, then the same questions asked of both, alternating: the query path of
   `knowledge.search` (IVF + full text + fusion + chunk rows). Reported: latency, the IVF's
   recall@10 against an exact scan over each backend's stored vectors, and how often both
   backends return the same top 5.

PostgreSQL works in a schema of its own, dropped afterwards.
The last line holds the headline figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from milliwatt.knowledge.index import VectorIndexes  # noqa: E402
from milliwatt.knowledge.search import hybrid_search  # noqa: E402
from milliwatt.knowledge.store import CollectionKey, connect  # noqa: E402
from milliwatt.knowledge.stores import KnowledgeStore, SqliteKnowledgeStore  # noqa: E402
from milliwatt.memory.sessions import SessionStore, TurnCost  # noqa: E402
from milliwatt.memory.stores import open_session_store  # noqa: E402
from milliwatt.models.base import Message  # noqa: E402

DIM = 384
KEY = CollectionKey("bench", "bench", "bench")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_turn(store: SessionStore, session: str, i: int) -> float:
    turn = [Message("user", f"question {i}: " + "words " * 40), Message("assistant", "an answer")]
    started = time.perf_counter()
    store.append_turn(session, "milliwatt", turn, TurnCost(120, 1, 0.4, 2.0))
    return (time.perf_counter() - started) * 1000


def bench_turns(stores: dict[str, SessionStore], turns: int) -> dict[str, list[float]]:
    for name, store in stores.items():  # warm: files, pool, plans
        for i in range(20):
            write_turn(store, f"warm-{name}", i)
    times: dict[str, list[float]] = {name: [] for name in stores}
    for i in range(turns):
        for name, store in stores.items():
            times[name].append(write_turn(store, f"s{i % 50}", i))
    return times


def corpus(n: int, questions: int) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """Chunk vectors and texts, question vectors and texts, all following 1,000 topics."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    labels = rng.integers(0, 1000, n + questions)
    points = centres[labels] + 0.35 * rng.standard_normal((n + questions, DIM)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    vocabulary = [f"t{topic}w{w}" for topic in range(1000) for w in range(30)]
    common = [f"common{w}" for w in range(300)]

    def words(label: int, count: int, filler: int) -> str:
        topical = [vocabulary[30 * label + t] for t in rng.integers(0, 30, count)]
        return " ".join(topical + list(rng.choice(common, filler)))

    texts = [words(int(label), 20, 15) for label in labels[:n]]
    asked = [words(int(label), 3, 0) for label in labels[n:]]
    return points[:n], texts, points[n:], asked


def fill(db: KnowledgeStore, vectors: np.ndarray, texts: list[str]) -> float:
    began = time.perf_counter()
    with db.write_transaction():
        collection = db.ensure_collection(KEY, DIM)
        for start in range(0, len(texts), 1000):
            chunks = [("heading", 0, 0, t) for t in texts[start : start + 1000]]
            db.insert_document(
                collection.id, f"doc{start}", "h", chunks, vectors[start : start + 1000]
            )
        db.bump_generation(collection.id)
    return time.perf_counter() - began


def bench_search(
    stores: dict[str, KnowledgeStore], tmp: Path, chunks: int, searches: int
) -> dict[str, dict[str, float]]:
    vectors, texts, questions, asked = corpus(chunks, searches)
    figures: dict[str, dict[str, float]] = {}
    indexes, collections, top5s = {}, {}, {}
    for name, db in stores.items():
        stored = fill(db, vectors, texts)
        collection = db.get_collection(KEY)
        assert collection is not None
        indexes[name] = VectorIndexes(tmp / f"index-{name}")
        began = time.perf_counter()
        index = indexes[name].get(db, collection)  # built from the stored rows
        built = time.perf_counter() - began
        _, keys, stored_vectors = db.vectors_at(collection.id)
        truth = [set(keys[np.argsort(-(stored_vectors @ q))[:10]].tolist()) for q in questions]
        found = [set(index.search(q, 10)[0].tolist()) for q in questions]
        recall = float(np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)]))
        figures[name] = {"store_s": stored, "index_build_s": built, "recall_at_10": recall}
        collections[name], top5s[name] = collection, []
    times: dict[str, list[float]] = {name: [] for name in stores}
    for i, (vector, text) in enumerate(zip(questions, asked, strict=True)):
        for name, db in stores.items():
            started = time.perf_counter()
            passages, _, _ = hybrid_search(db, indexes[name], [collections[name]], text, vector, 5)
            if i >= 10:  # the first few warm caches and plans
                times[name].append((time.perf_counter() - started) * 1000)
            top5s[name].append([p.text for p in passages])
    sqlite_top, postgres_top = top5s["sqlite"], top5s["postgres"]
    same = np.mean([a == b for a, b in zip(sqlite_top, postgres_top, strict=True)])
    for name, values in times.items():
        figures[name] |= {"p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99)}
    figures["both"] = {"same_top5": float(same)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    import psycopg

    from milliwatt.knowledge.postgres import PostgresKnowledgeStore
    from milliwatt.storage.postgres import close_database

    schema = f"mw_bench_{secrets.token_hex(4)}"
    url = f"{args.postgres}?options={quote(f'-csearch_path={schema}')}"
    with (
        psycopg.connect(args.postgres, autocommit=True) as admin,
        tempfile.TemporaryDirectory() as tmp,
    ):
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            sessions = {
                "sqlite": open_session_store(Path(tmp)),
                "postgres": open_session_store(Path(tmp), url),
            }
            turns = bench_turns(sessions, args.turns)
            knowledge: dict[str, KnowledgeStore] = {
                "sqlite": SqliteKnowledgeStore(connect(Path(tmp) / "knowledge.db")),
                "postgres": PostgresKnowledgeStore(url),
            }
            search = bench_search(knowledge, Path(tmp), args.chunks, args.searches)
            for store in [*sessions.values(), *knowledge.values()]:
                store.close()
        finally:
            close_database(url)
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

    figures: dict[str, float] = {}
    print(f"1. one turn's durable write: {args.turns} per store, alternating, one thread")
    print(f"   {'store':<10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, values in turns.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(f"   {name:<10}{p50:>10.3f}{p99:>10.3f}{sum(values) / len(values):>10.3f}")
        figures[f"{name}_turn_write_p50_ms"] = p50
        figures[f"{name}_turn_write_p99_ms"] = p99
    print(
        f"2. hybrid knowledge search: {args.chunks} chunks, {args.searches} questions, alternating"
    )
    print(
        f"   {'store':<10}{'store s':>9}{'index s':>9}{'recall@10':>11}{'p50 ms':>9}{'p99 ms':>9}"
    )
    for name in ("sqlite", "postgres"):
        f = search[name]
        print(
            f"   {name:<10}{f['store_s']:>9.1f}{f['index_build_s']:>9.2f}{f['recall_at_10']:>11.3f}"
            f"{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
        )
        figures[f"{name}_search_p50_ms"] = f["p50_ms"]
        figures[f"{name}_search_p99_ms"] = f["p99_ms"]
        figures[f"{name}_recall_at_10"] = f["recall_at_10"]
    figures["same_top5_share"] = search["both"]["same_top5"]
    print(f"   the same top 5 on both: {figures['same_top5_share']:.1%} of questions")
    write_ratio = figures["postgres_turn_write_p50_ms"] / figures["sqlite_turn_write_p50_ms"]
    search_ratio = figures["postgres_search_p50_ms"] / figures["sqlite_search_p50_ms"]
    print(f"postgres / sqlite, p50: turn write {write_ratio:.2f}, search {search_ratio:.2f}")
    figures |= {"postgres_over_sqlite_write_p50": write_ratio}
    figures |= {"postgres_over_sqlite_search_p50": search_ratio}
    print(" ".join(f"{k}={v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
