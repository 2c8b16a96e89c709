"""One turn's write (user message + answer, one transaction, durable on return) on SQLite
and on PostgreSQL, measured side by side in one run.

    python bench/storage_turns.py [--turns 400] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Both stores are the ones `[storage] url` selects: SQLite in WAL with synchronous=FULL (an
fsync per commit), PostgreSQL with synchronous_commit=on (the server flushes its WAL before
the commit returns) over loopback TCP. The writes alternate between the stores, so load on
the machine falls on both alike. PostgreSQL works in a schema of its own, dropped afterwards.

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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from milliwatt.memory.sessions import SessionStore, TurnCost  # noqa: E402
from milliwatt.memory.stores import open_session_store  # noqa: E402
from milliwatt.models.base import Message  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_turn(store: SessionStore, session: str, i: int) -> float:
    turn = [Message("user", f"question {i}: " + "words " * 40), Message("assistant", "an answer")]
    started = time.perf_counter()
    store.append_turn(session, "milliwatt", turn, TurnCost(120, 1, 0.4, 2.0))
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    import psycopg

    from milliwatt.storage.postgres import close_database

    schema = f"mw_bench_{secrets.token_hex(4)}"
    url = f"{args.postgres}?options={quote(f'-csearch_path={schema}')}"
    with (
        psycopg.connect(args.postgres, autocommit=True) as admin,
        tempfile.TemporaryDirectory() as tmp,
    ):
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            stores = {
                "sqlite": open_session_store(Path(tmp)),
                "postgres": open_session_store(Path(tmp), url),
            }
            for name, store in stores.items():  # warm: files, pool, prepared plans
                for i in range(20):
                    write_turn(store, f"warm-{name}", i)
            times: dict[str, list[float]] = {name: [] for name in stores}
            for i in range(args.turns):
                for name, store in stores.items():
                    times[name].append(write_turn(store, f"s{i % 50}", i))
            for store in stores.values():
                store.close()
        finally:
            close_database(url)
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

    print(f"{args.turns} turns per store, alternating, one thread")
    print(f"{'store':<10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    figures = {}
    for name, values in times.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(f"{name:<10}{p50:>10.3f}{p99:>10.3f}{sum(values) / len(values):>10.3f}")
        figures[f"{name}_turn_write_p50_ms"] = p50
        figures[f"{name}_turn_write_p99_ms"] = p99
    ratio = figures["postgres_turn_write_p50_ms"] / figures["sqlite_turn_write_p50_ms"]
    print(f"postgres / sqlite, p50: {ratio:.2f}")
    print(
        " ".join(f"{k}={v:.3f}" for k, v in figures.items())
        + f" postgres_over_sqlite_p50={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
