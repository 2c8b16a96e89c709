"""The request ledger on SQLite: what is added is read back whole, in order, after flush."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from milliwatt.telemetry.records import RequestRecord
from milliwatt.telemetry.store import RequestStore


def make(i: int, **fields: object) -> RequestRecord:
    record = RequestRecord(f"id-{i}", 1000.0 + i, "POST", "/v1/chat/completions", 200, route="tool")
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_records_round_trip(tmp_path: Path) -> None:
    store = RequestStore(tmp_path / "requests.db")
    original = make(1, tools=[{"name": "math.calculate", "ok": True}], denials=["egress"],
                    waf_rules=["920350"], waf_blocked=True, tier=0, streamed=True,
                    prompt_tokens=5, completion_tokens=7, joules_est=0.25)  # fmt: skip
    store.add(original)
    store.flush()
    assert store.since(0) == [original]
    store.close()
    again = RequestStore(tmp_path / "requests.db")  # and after a restart
    assert again.since(0) == [original]
    again.close()


def test_since_and_the_live_cursor(tmp_path: Path) -> None:
    store = RequestStore(tmp_path / "requests.db")
    for i in range(5):
        store.add(make(i))
    store.flush()
    assert [r.id for r in store.since(1002.0)] == ["id-2", "id-3", "id-4"]
    newest = store.latest(2)
    assert [r.id for _, r in newest] == ["id-4", "id-3"]
    store.add(make(-10))  # arrived long ago, finished now: the cursor still sees it
    store.flush()
    assert [r.id for _, r in store.latest(10, after=newest[0][0])] == ["id--10"]
    store.close()


def test_many_threads_add_and_nothing_is_lost(tmp_path: Path) -> None:
    store = RequestStore(tmp_path / "requests.db")

    def add(start: int) -> None:
        for i in range(start, start + 200):
            store.add(make(i))

    threads = [threading.Thread(target=add, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.flush()
    assert len(store.since(0)) == 800
    store.close()
    rows = sqlite3.connect(tmp_path / "requests.db").execute("SELECT COUNT(*) FROM requests")
    assert rows.fetchone()[0] == 800


def test_a_record_added_twice_is_stored_once(tmp_path: Path) -> None:
    store = RequestStore(tmp_path / "requests.db")
    store.add(make(1))
    store.add(make(1, status=500))  # the first write stands: nothing stored is rewritten
    store.flush()
    assert [r.status for r in store.since(0)] == [200]
    store.close()
