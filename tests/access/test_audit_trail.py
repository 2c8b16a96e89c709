"""The audit trail's chain: appends from threads and processes stay one chain, and `verify`
finds an edited byte, a removed record, two swapped records and a log cut short."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from milliwatt.shield.audit_trail import AuditTrail, checkpoints_path, read_trail, verify


def _fill(path: Path, count: int, **kwargs: int) -> None:
    with AuditTrail(path, **kwargs) as trail:
        for i in range(count):
            trail.record("key.used", {"key_id": f"k{i}", "tenant": "acme", "n": i})


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_an_untouched_trail_verifies(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    _fill(path, 25)
    verdict = verify(path)
    assert verdict.ok and verdict.records == 25
    records = list(read_trail(path))
    assert [r["seq"] for r in records] == list(range(1, 26))
    assert records[1]["prev"] == records[0]["hash"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    _fill(path, 3)
    _fill(path, 3)
    assert verify(path).ok and verify(path).records == 6


def test_one_changed_byte_is_found_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    _fill(path, 10)
    data = bytearray(path.read_bytes())
    at = data.index(b'"k4"') + 2  # the key id of the fifth record: k4 -> k5
    data[at] = ord("5")
    path.write_bytes(bytes(data))
    verdict = verify(path)
    assert [f.line for f in verdict.findings] == [5]
    assert "edited" in verdict.findings[0].problem


def test_a_removed_record_is_found(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    _fill(path, 10)
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:6] + lines[7:]))
    verdict = verify(path)
    assert [f.line for f in verdict.findings] == [7]
    assert "record 7, before record 8, is missing" in verdict.findings[0].problem


def test_two_swapped_records_are_found(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    _fill(path, 10)
    lines = _lines(path)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))
    verdict = verify(path)
    assert [f.line for f in verdict.findings] == [5]
    assert "record 4 comes after record 5" in verdict.findings[0].problem


def test_a_rewritten_chain_without_its_checkpoint_is_found(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    _fill(path, 12, checkpoint_every=5)
    marks = checkpoints_path(path).read_text().splitlines()
    assert [json.loads(m)["seq"] for m in marks] == [5, 10]
    path.write_bytes(b"".join(_lines(path)[:8]))  # cut short: records 9-12 gone
    verdict = verify(path)
    assert not verdict.ok
    assert "checkpoint 10: the record is missing" in str(verdict.findings[0])


def test_threads_append_one_chain(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "trail.jsonl")
    threads = [
        threading.Thread(target=lambda: [trail.record("key.used", {"i": i}) for i in range(100)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trail.close()
    verdict = verify(trail.path)
    assert verdict.ok and verdict.records == 800


def _append_in_process(path: str) -> None:
    _fill(Path(path), 150)


def test_processes_append_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_append_in_process, args=(str(path),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    verdict = verify(path)
    assert verdict.ok, verdict.findings[:3]
    assert verdict.records == 600


def test_secrets_are_redacted_and_bad_names_refused(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "trail.jsonl")
    key = "mw_abcdefghij_" + "x" * 43
    trail.record("key.refused", {"presented": key, "note": "password=hunter2"})
    with pytest.raises(ValueError, match="invalid audit event name"):
        trail.record("not an event", {})
    text = trail.path.read_text()
    assert "xxxx" not in text and "hunter2" not in text and "mw_abcdefghij_" in text
    assert verify(trail.path).records == 1  # the refused record was not half-written
