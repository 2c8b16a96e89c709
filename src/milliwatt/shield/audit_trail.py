"""The security audit trail: a hash-chained, append-only JSON-lines log.

Each record carries its sequence number, the hash of the record before it and its own hash
(SHA-256 over the previous hash and the record's canonical JSON), so editing, removing or
reordering a record breaks the chain at that place, and `verify` says where. Every
`checkpoint_every` records, the current (seq, hash) is also appended to a separate
checkpoints file: a log cut short before a checkpoint no longer holds what the checkpoint
names. Several processes may append to one trail: each append takes an exclusive `flock`,
reads what others appended since (only the new bytes), and writes one line with one
`write(2)`. With `[storage] url` set to PostgreSQL, audit_trail_postgres.py keeps the same
records, chained the same way, in a table (`Trail` is what both offer).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from milliwatt.shield.auditlog import truncate
from milliwatt.shield.redaction import redact_record

GENESIS = "0" * 64  # the "previous hash" of the first record
CHECKPOINT_EVERY = 1000
_TAIL_CHUNK = 65_536


def record_hash(prev: str, body: Mapping[str, Any]) -> str:
    """The hash that chains `body` (a record without its "hash") to the one before it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev.encode("ascii") + canonical.encode("utf-8")).hexdigest()


class Trail(Protocol):
    def record(self, event: str, fields: Mapping[str, object]) -> None:
        """Append one event (a dotted name such as "key.created") with its fields."""
        ...

    def export(self) -> bytes:
        """Every record as a JSON line, in order: what `verify` reads from a file."""
        ...

    def close(self) -> None: ...


def new_record(seq: int, prev: str, event: str, fields: Mapping[str, object]) -> tuple[bytes, str]:
    """Record number `seq`, chained to the hash `prev`: its JSON line and its hash."""
    if not event or not all(part.isidentifier() for part in event.split(".")):
        raise ValueError(f"invalid audit event name {event!r}: use dotted identifiers")
    clean = redact_record(truncate(dict(fields)))
    body = {
        "seq": seq,
        "time": time.time(),
        "event": event,
        "fields": json.loads(json.dumps(clean, default=str)),
        "prev": prev,
    }
    digest = record_hash(prev, body)
    return (json.dumps(body | {"hash": digest}, ensure_ascii=False) + "\n").encode(), digest


class AuditTrail:
    """Appends security events to `path`; `record` is safe across threads and processes."""

    def __init__(self, path: Path, *, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"audit trail {self.path} exists and is not a regular file")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.checkpoints = checkpoints_path(self.path)
        self.checkpoint_every = checkpoint_every
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        # what this process knows of the end of the file: its size, last seq and hash
        self._size = -1
        self._seq = 0
        self._hash = GENESIS

    def record(self, event: str, fields: Mapping[str, object]) -> None:
        """Append one event (a dotted name such as "key.created") with its fields."""
        new_record(1, GENESIS, event, {})  # a bad name is refused before the lock is taken
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self._catch_up()
                data, digest = new_record(self._seq + 1, self._hash, event, fields)
                written = os.write(self._fd, data)
                while written < len(data):  # a short write: the disk is full; finish the line
                    written += os.write(self._fd, data[written:])
                self._size += len(data)
                self._seq, self._hash = self._seq + 1, digest
                if self._seq % self.checkpoint_every == 0:
                    self._checkpoint()
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _catch_up(self) -> None:
        """Read the last record when another process (or a restart) appended since."""
        size = os.fstat(self._fd).st_size
        if size == self._size:
            return
        last = last_line(self._fd, size)
        if last is None:
            self._seq, self._hash = 0, GENESIS
        else:
            try:
                record = json.loads(last)
                self._seq, self._hash = int(record["seq"]), str(record["hash"])
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"the audit trail {self.path} ends in a damaged record; "
                    "run `milliwatt audit verify` and move the file aside"
                ) from None
        self._size = size

    def _checkpoint(self) -> None:
        line = json.dumps({"seq": self._seq, "hash": self._hash, "time": time.time()}) + "\n"
        fd = os.open(self.checkpoints, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def export(self) -> bytes:
        return self.path.read_bytes()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def checkpoints_path(path: Path) -> Path:
    return path.with_name(path.name + ".checkpoints")


def last_line(fd: int, size: int) -> bytes | None:
    """The last non-empty line of the file, read backwards from its end."""
    end = size
    tail = b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        tail = os.pread(fd, end - start, start) + tail
        end = start
        stripped = tail.rstrip(b"\n")
        if b"\n" in stripped or end == 0:
            return stripped.rsplit(b"\n", 1)[-1] or None
    return None


@dataclass(frozen=True)
class Finding:
    """One place where the trail is not what was written."""

    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass(frozen=True)
class Verdict:
    records: int
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


def verify(path: Path) -> Verdict:
    """Check every record's hash, that each follows the record before it in the chain, that
    none is missing or out of order, and the checkpoints; every break names its line."""
    marks = checkpoints_path(Path(path))
    checkpoints = marks.read_text(encoding="utf-8").splitlines() if marks.is_file() else []
    with Path(path).open("rb") as lines:
        return verify_records(lines, checkpoints, marks.name)


def verify_records(
    lines: Iterable[bytes], checkpoints: Iterable[str], checkpoints_name: str
) -> Verdict:
    """`verify` over records as JSON lines in order and checkpoints as JSON lines."""
    findings: list[Finding] = []
    entries: list[tuple[int, int, str, str]] = []  # line, seq, prev, hash
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            body = {k: v for k, v in record.items() if k != "hash"}
            seq, stored, claimed_prev = int(record["seq"]), str(record["hash"]), record["prev"]
        except (ValueError, KeyError, TypeError, AttributeError):
            findings.append(Finding(number, "not a readable record (edited?)"))
            continue
        if record_hash(claimed_prev, body) != stored:
            findings.append(Finding(number, f"record {seq} was edited (its hash differs)"))
        entries.append((number, seq, str(claimed_prev), stored))
    hashes = {seq: digest for _, seq, _, digest in entries}
    previous_seq = 0
    for number, seq, claimed_prev, _ in entries:
        if seq <= previous_seq:
            findings.append(
                Finding(number, f"record {seq} comes after record {previous_seq} (moved?)")
            )
        before = GENESIS if seq == 1 else hashes.get(seq - 1)
        if before is None:
            findings.append(Finding(number, f"record {seq - 1}, before record {seq}, is missing"))
        elif claimed_prev != before:
            findings.append(Finding(number, f"record {seq} does not follow record {seq - 1}"))
        previous_seq = seq
    findings.sort(key=lambda f: f.line)
    findings.extend(_check_checkpoints(checkpoints, checkpoints_name, hashes))
    return Verdict(len(entries) + sum("readable" in f.problem for f in findings), findings)


def _check_checkpoints(
    checkpoints: Iterable[str], name: str, hashes: Mapping[int, str]
) -> list[Finding]:
    found = []
    for number, raw in enumerate(checkpoints, 1):
        try:
            mark = json.loads(raw)
            seq, digest = int(mark["seq"]), str(mark["hash"])
        except (ValueError, KeyError, TypeError):
            found.append(Finding(number, f"{name}: not a readable checkpoint"))
            continue
        if seq not in hashes:
            found.append(Finding(0, f"checkpoint {seq}: the record is missing (log cut short?)"))
        elif hashes[seq] != digest:
            found.append(Finding(0, f"checkpoint {seq}: the record's hash differs"))
    return found


def read_trail(path: Path) -> Iterator[dict[str, Any]]:
    """The records in file order (a damaged line is skipped; `verify` names it)."""
    with Path(path).open("rb") as lines:
        for raw in lines:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
