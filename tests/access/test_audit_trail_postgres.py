"""The audit trail in PostgreSQL: one chain from threads, processes and nodes; `verify` (and
`milliwatt audit verify`) finds an edited, removed or moved record and a trail cut short."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from milliwatt.shield.audit_trail import verify
from milliwatt.shield.audit_trail_postgres import (
    PostgresAuditTrail,
    read_postgres_trail,
    verify_postgres,
)


def _fill(url: str, count: int, **kwargs: int) -> None:
    trail = PostgresAuditTrail(url, **kwargs)
    for i in range(count):
        trail.record("key.used", {"key_id": f"k{i}", "tenant": "acme", "n": i})


def _sql(url: str, statement: str, *params: object) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode(), params)


def test_an_untouched_trail_verifies_and_reads_in_order(postgres_url: str) -> None:
    _fill(postgres_url, 25)
    verdict = verify_postgres(postgres_url)
    assert verdict.ok and verdict.records == 25
    records = list(read_postgres_trail(postgres_url))
    assert [r["seq"] for r in records] == list(range(1, 26))
    assert records[3]["fields"] == {"key_id": "k3", "tenant": "acme", "n": 3}
    # a second handle (another node) continues the same chain
    _fill(postgres_url, 2)
    assert verify_postgres(postgres_url).records == 27


def test_an_edited_record_is_found(postgres_url: str) -> None:
    _fill(postgres_url, 5)
    _sql(
        postgres_url,
        "UPDATE audit_trail SET record = replace(record, '\"k2\"', '\"k9\"') WHERE seq = 3",
    )
    verdict = verify_postgres(postgres_url)
    assert [str(f) for f in verdict.findings] == ["line 3: record 3 was edited (its hash differs)"]


def test_removed_and_swapped_records_are_found(postgres_url: str) -> None:
    _fill(postgres_url, 6)
    _sql(postgres_url, "DELETE FROM audit_trail WHERE seq = 2")
    _sql(
        postgres_url,
        "UPDATE audit_trail SET record = CASE seq WHEN 4 THEN "
        "(SELECT record FROM audit_trail WHERE seq = 5) ELSE "
        "(SELECT record FROM audit_trail WHERE seq = 4) END WHERE seq IN (4, 5)",
    )
    problems = [f.problem for f in verify_postgres(postgres_url).findings]
    assert "record 1, before record 2, is missing" not in problems
    assert "record 2, before record 3, is missing" in problems
    assert any("comes after" in p for p in problems)


def test_a_trail_cut_short_before_its_checkpoint_is_found(postgres_url: str) -> None:
    _fill(postgres_url, 7, checkpoint_every=3)
    assert verify_postgres(postgres_url).ok
    _sql(postgres_url, "DELETE FROM audit_trail WHERE seq >= 6")
    problems = [f.problem for f in verify_postgres(postgres_url).findings]
    assert problems == ["checkpoint 6: the record is missing (log cut short?)"]


def _append_from_process(url: str, tag: str) -> None:
    trail = PostgresAuditTrail(url)
    for i in range(20):
        trail.record("key.used", {"writer": tag, "n": i})


def test_threads_and_processes_append_one_chain(postgres_url: str) -> None:
    trail = PostgresAuditTrail(postgres_url)

    def write(tag: str) -> None:
        for i in range(20):
            trail.record("key.used", {"writer": tag, "n": i})

    threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(3)]
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=_append_from_process, args=(postgres_url, f"p{i}")) for i in range(2)
    ]
    for worker in [*threads, *processes]:
        worker.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    verdict = verify_postgres(postgres_url)
    assert verdict.ok and verdict.records == 100


def test_bad_event_names_are_refused_and_secrets_redacted(postgres_url: str) -> None:
    trail = PostgresAuditTrail(postgres_url)
    with pytest.raises(ValueError, match="invalid audit event name"):
        trail.record("not an event", {})
    trail.record("key.created", {"authorization": "Bearer mw_abcdefghij_" + "x" * 43, "z": "\x00"})
    (record,) = read_postgres_trail(postgres_url)
    assert "x" * 43 not in json.dumps(record) and record["fields"]["z"] == "\x00"
    assert verify_postgres(postgres_url).records == 1


def test_the_audit_commands_read_the_postgres_trail(postgres_url: str, tmp_path: Path) -> None:
    _fill(postgres_url, 4)
    env = {
        **os.environ,
        "MILLIWATT_DATA_DIR": str(tmp_path / "data"),
        "MILLIWATT_CONFIG": str(tmp_path / "m.toml"),
        "MILLIWATT_STORAGE__URL": postgres_url,
    }
    (tmp_path / "m.toml").write_text("")

    def audit(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "milliwatt.cli", "audit", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    intact = audit("verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit trail intact: 4 records" in intact.stdout
    assert "key.used" in audit("tail", "-n", "2").stdout
    _sql(postgres_url, "DELETE FROM audit_trail WHERE seq = 2")
    broken = audit("verify")
    assert broken.returncode == 1
    assert "record 2, before record 3, is missing" in broken.stdout
    # what export writes is the file form: the file verifier reads it
    exported = tmp_path / "copy.jsonl"
    exported.write_bytes(PostgresAuditTrail(postgres_url).export())
    assert [str(f) for f in verify(exported).findings] == [
        "line 2: record 2, before record 3, is missing"
    ]
