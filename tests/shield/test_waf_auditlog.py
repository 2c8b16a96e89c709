"""The audit log: appends whole JSON lines, never rewrites, survives concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from milliwatt.shield.auditlog import AuditLog, read_records, truncate


def test_records_round_trip_and_existing_lines_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "audit.jsonl"
    path.parent.mkdir()
    path.write_text('{"old": 1}\n')
    with AuditLog(path) as log:
        log.write({"request_id": "a", "matched_rules": [{"id": 942100, "data": "é ' or 1=1"}]})
        log.write({"request_id": "b", "status": 403})
    records = list(read_records(path))
    assert records == [
        {"old": 1},
        {"request_id": "a", "matched_rules": [{"id": 942100, "data": "é ' or 1=1"}]},
        {"request_id": "b", "status": 403},
    ]


def test_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "audit.jsonl"
    AuditLog(path).write({"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}


def test_long_strings_are_truncated_everywhere() -> None:
    record = {"uri": "u" * 10, "rules": [{"data": "d" * 1000}], "nested": {"k": ("v" * 600,)}}
    cut = truncate(record, limit=100)
    assert cut["uri"] == "u" * 10
    assert cut["rules"][0]["data"].startswith("d" * 100) and len(cut["rules"][0]["data"]) < 120
    assert cut["nested"]["k"][0].endswith("[truncated]")
    assert record["rules"][0]["data"] == "d" * 1000  # the caller's record is left alone


def test_a_folder_in_the_way_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a regular file"):
        AuditLog(tmp_path)


def test_a_corrupt_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"ok": 1}\n{broken\n')
    with pytest.raises(ValueError, match=r"audit.jsonl:2"):
        list(read_records(path))


def _write_many(path: str, tag: str, count: int) -> None:
    log = AuditLog(Path(path))
    for i in range(count):
        log.write({"writer": tag, "i": i, "pad": "x" * 2000})
    log.close()


def test_concurrent_threads_and_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    shared = AuditLog(path)
    threads = [
        threading.Thread(
            target=lambda t=t: [shared.write({"writer": f"t{t}", "i": i}) for i in range(200)]
        )
        for t in range(4)
    ]
    procs = [
        multiprocessing.get_context("spawn").Process(
            target=_write_many, args=(str(path), f"p{p}", 200)
        )
        for p in range(2)
    ]
    for worker in [*threads, *procs]:
        worker.start()
    for worker in [*threads, *procs]:
        worker.join()
    shared.close()
    records = list(read_records(path))
    assert len(records) == 6 * 200
    by_writer: dict[str, list[int]] = {}
    for r in records:
        by_writer.setdefault(r["writer"], []).append(r["i"])
    assert all(ids == list(range(200)) for ids in by_writer.values())
