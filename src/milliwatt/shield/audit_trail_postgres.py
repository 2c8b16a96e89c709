"""The audit trail in PostgreSQL: the same records as the JSON-lines file, chained the same
way, one row each (`audit_trail`: seq, the record's JSON text exactly as hashed).

Appends from every node take one transaction-level advisory lock, read the last record and
insert the next, so the chain stays one line however many nodes write; checkpoints go to
`audit_checkpoints` in the same transaction. `verify` is the file's, over the rows in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from milliwatt.shield.audit_trail import (
    CHECKPOINT_EVERY,
    GENESIS,
    Verdict,
    new_record,
    verify_records,
)
from milliwatt.storage.postgres import database

LOCK_CLASS = 0x6D61  # "ma": appends to the audit trail
_BATCH = 1000  # rows fetched at a time when reading the whole trail


class PostgresAuditTrail:
    def __init__(self, url: str, *, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.url = url
        self.checkpoint_every = checkpoint_every
        database(url)  # connect and migrate now: a bad URL fails at start

    def record(self, event: str, fields: Mapping[str, object]) -> None:
        """Append one event (a dotted name such as "key.created") with its fields."""
        new_record(1, GENESIS, event, {})  # a bad name is refused before the lock is taken
        with database(self.url).connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_CLASS,))
            last = conn.execute(
                "SELECT seq, record FROM audit_trail ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (0, GENESIS) if last is None else (int(last[0]), _hash_of(last[1]))
            data, digest = new_record(seq + 1, prev, event, fields)
            conn.execute(
                "INSERT INTO audit_trail (seq, record) VALUES (%s, %s)",
                (seq + 1, data.decode().rstrip("\n")),
            )
            if (seq + 1) % self.checkpoint_every == 0:
                mark = json.dumps({"seq": seq + 1, "hash": digest, "time": time.time()})
                conn.execute(
                    "INSERT INTO audit_checkpoints (seq, mark) VALUES (%s, %s)", (seq + 1, mark)
                )

    def export(self) -> bytes:
        return b"".join(f"{record}\n".encode() for record in records(self.url))

    def close(self) -> None:
        """The pool is the process's, shared with other stores."""


def _hash_of(record: str) -> str:
    try:
        return str(json.loads(record)["hash"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            "the audit trail in PostgreSQL ends in a damaged record; run `milliwatt audit verify`"
        ) from None


def records(url: str) -> Iterator[str]:
    """Every record's JSON text, in sequence order."""
    with database(url).connection() as conn, conn.transaction():
        cursor = conn.cursor(name="audit_trail_rows")  # server-side: not all in memory at once
        cursor.execute("SELECT record FROM audit_trail ORDER BY seq")
        while rows := cursor.fetchmany(_BATCH):
            yield from (str(r[0]) for r in rows)


def verify_postgres(url: str) -> Verdict:
    """`audit_trail.verify` over the table: edited, removed, moved records and checkpoints
    (a finding's "line" is the record's place in sequence order)."""
    with database(url).connection() as conn:
        marks = [str(r[0]) for r in conn.execute("SELECT mark FROM audit_checkpoints ORDER BY seq")]
    return verify_records((r.encode() for r in records(url)), marks, "audit_checkpoints")


def read_postgres_trail(url: str) -> Iterator[dict[str, Any]]:
    """The records in sequence order (a damaged one is skipped; `verify_postgres` names it)."""
    for text in records(url):
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
