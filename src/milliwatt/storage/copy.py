"""`milliwatt storage copy`: what a data directory's SQLite files hold, into PostgreSQL, for a
deployment that moves from the embedded default to a shared database.

Each kind is copied in one transaction, and only into an empty table: a second run, or a
database already in use, copies nothing twice. Sessions keep their turns, times and costs;
facts, events and documents keep their text and vectors (with new ids: the index files of
each node are rebuilt from the rows); the audit trail's records are copied as they were
written, so its hash chain still verifies; API keys (their hashes), tenants' limits and
operators (with the step of their last accepted code: no code is accepted twice) come as
they are. The SQLite files are only read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from milliwatt.storage.postgres import database

# the data directory's files (memory, tools, knowledge and access name them the same)
FILES = {
    "sessions": "sessions.db",
    "facts": "facts.db",
    "calendars": "calendar.sqlite",
    "knowledge": "knowledge.db",
    "audit_trail": "audit-trail.jsonl",
    "access": "access.db",
}
# the table that must be empty for each kind to be copied
TARGETS = {
    "sessions": "sessions",
    "facts": "facts",
    "calendars": "calendar_events",
    "knowledge": "knowledge_collections",
    "audit_trail": "audit_trail",
    "access": "keys",
}

Connection = Any  # a psycopg connection inside its transaction


class NulCharacterError(ValueError):
    """PostgreSQL text cannot hold NUL: the copy stops rather than alter what it holds."""


def copy_data_dir(data_dir: Path, url: str) -> dict[str, str]:
    """Copy every kind the data directory holds; what happened to each, in words."""
    copiers: dict[str, Callable[[Path, Connection], int]] = {
        "sessions": _sessions,
        "facts": _facts,
        "calendars": _calendars,
        "knowledge": _knowledge,
        "audit_trail": _audit_trail,
        "access": _access,
    }
    report: dict[str, str] = {}
    for kind, copier in copiers.items():
        source = data_dir / FILES[kind]
        if not source.is_file():
            report[kind] = f"nothing to copy (no {source.name})"
            continue
        with database(url).connection() as conn, conn.transaction():
            table = TARGETS[kind]
            found = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
            if found is not None and found[0]:
                report[kind] = f"skipped: PostgreSQL's {table} is not empty"
                continue
            report[kind] = f"copied {copier(source, conn)}"
    return report


@contextmanager
def _read(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        yield db


def _text(*values: object) -> None:
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            raise NulCharacterError(
                f"{value[:40]!r}... holds a NUL character (\\u0000), which PostgreSQL "
                "text cannot hold; nothing of this kind was copied"
            )


def _sessions(path: Path, conn: Connection) -> int:
    with _read(path) as db:
        for row in db.execute("SELECT name, agent, created, updated FROM sessions"):
            conn.execute("INSERT INTO sessions VALUES (%s, %s, %s, %s)", row)
        turns: dict[int, int] = {}
        for old, *rest in db.execute(
            "SELECT id, session, created, tokens, model_calls, seconds, joules_est "
            "FROM turns ORDER BY id"
        ):
            turns[old] = conn.execute(
                "INSERT INTO turns (session, created, tokens, model_calls, seconds, joules_est)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                rest,
            ).fetchone()[0]
        messages = db.execute(
            "SELECT session, turn, role, content, tool_calls, tool_call_id, name "
            "FROM messages ORDER BY id"
        ).fetchall()
    rows = []
    for session, turn, role, content, calls, call_id, name in messages:
        _text(content, call_id, name, calls)
        tool_calls = Jsonb(json.loads(calls)) if calls else None
        rows.append((session, turns[turn], role, content, tool_calls, call_id, name))
    _insert(
        conn,
        "INSERT INTO messages (session, turn, role, content, tool_calls, tool_call_id, "
        "name) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        rows,
    )
    return len(turns)


def _facts(path: Path, conn: Connection) -> int:
    return _copy_rows(
        path, conn,
        "SELECT user, agent, text, source, created_at, vector FROM facts ORDER BY id",
        'INSERT INTO facts ("user", agent, text, source, created_at, vector) '
        "VALUES (%s, %s, %s, %s, %s, %s)",
        text_columns=4,
    )  # fmt: skip


def _calendars(path: Path, conn: Connection) -> int:
    return _copy_rows(
        path, conn,
        "SELECT id, user, title, start, end, created FROM events",
        'INSERT INTO calendar_events (id, "user", title, start_at, end_at, created) '
        "VALUES (%s, %s, %s, %s, %s, %s)",
        text_columns=3,
    )  # fmt: skip


def _copy_rows(path: Path, conn: Connection, select: str, insert: str, text_columns: int) -> int:
    """One SQLite query's rows into one INSERT; their first `text_columns` checked for NULs."""
    with _read(path) as db:
        rows = db.execute(select).fetchall()
    for row in rows:
        _text(*row[:text_columns])
    _insert(conn, insert, rows)
    return len(rows)


def _insert(conn: Connection, sql: str, rows: Sequence[Sequence[object]]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(sql, rows)


def _knowledge(path: Path, conn: Connection) -> int:
    documents = 0
    with _read(path) as db:
        for old, tenant, agent, name, dimension, created in db.execute(
            "SELECT id, tenant, agent, name, dimension, created_at FROM collections ORDER BY id"
        ).fetchall():
            new = conn.execute(
                "INSERT INTO knowledge_collections (tenant, agent, name, dimension, "
                "generation, created_at) VALUES (%s, %s, %s, %s, 1, %s) RETURNING id",
                (tenant, agent, name, dimension, created),
            ).fetchone()[0]
            for document, *fields in db.execute(
                "SELECT id, source, content_hash, ingested_at FROM documents "
                "WHERE collection_id = ? ORDER BY id",
                (old,),
            ).fetchall():
                documents += 1
                _copy_document(db, conn, document, new, fields)
            conn.execute(  # the counts BM25 reads (storage/fulltext.py)
                "UPDATE knowledge_collections SET chunks = s.n, tokens = s.t FROM "
                "(SELECT count(*) AS n, coalesce(sum(c.tokens), 0) AS t "
                "FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id "
                "WHERE d.collection_id = %s) AS s WHERE id = %s",
                (new, new),
            )
    return documents


def _copy_document(
    db: sqlite3.Connection, conn: Connection, document: int, collection: int, fields: list[Any]
) -> None:
    _text(fields[0])
    new = conn.execute(
        "INSERT INTO knowledge_documents (collection_id, source, content_hash, ingested_at) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (collection, *fields),
    ).fetchone()[0]
    chunks = db.execute(
        'SELECT heading, start, "end", text, vector FROM chunks WHERE document_id = ? ORDER BY id',
        (document,),
    ).fetchall()
    for chunk in chunks:
        _text(chunk[0], chunk[3])
    _insert(
        conn,
        "INSERT INTO knowledge_chunks (document_id, heading, start_at, end_at, text, "
        "vector) VALUES (%s, %s, %s, %s, %s, %s)",
        [(new, *chunk) for chunk in chunks],
    )


def _audit_trail(path: Path, conn: Connection) -> int:
    count = 0
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            seq = int(json.loads(raw)["seq"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"{path.name} line {number} is not a readable record: run "
                "`milliwatt audit verify` before copying the trail"
            ) from None
        # the line exactly as written: its hash covers it, so the chain verifies as it did
        conn.execute("INSERT INTO audit_trail (seq, record) VALUES (%s, %s)", (seq, raw.decode()))
        count += 1
    marks = path.with_name(path.name + ".checkpoints")
    if marks.is_file():
        for line in marks.read_text(encoding="utf-8").splitlines():
            mark = json.loads(line)
            conn.execute(
                "INSERT INTO audit_checkpoints (seq, mark) VALUES (%s, %s) "
                "ON CONFLICT (seq) DO NOTHING",
                (int(mark["seq"]), line),
            )
    return count


def _access(path: Path, conn: Connection) -> int:
    """Tenants, keys and operators; an operator or tenant PostgreSQL has already is kept."""
    with _read(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        read = {
            table: db.execute(f"SELECT {columns} FROM {table}").fetchall() if table in tables
            else []
            for table, columns in _ACCESS_COLUMNS.items()
        }  # fmt: skip
    for table, columns in _ACCESS_COLUMNS.items():
        rows = read[table]
        for row in rows:
            _text(*row)
        booleans = _ACCESS_BOOLEANS.get(table)  # SQLite's 0/1, PostgreSQL's boolean
        if booleans is not None:
            rows = [(*r[:booleans], bool(r[booleans]), *r[booleans + 1 :]) for r in rows]
        _insert(
            conn,
            f"INSERT INTO {table} ({columns}) VALUES "
            f"({', '.join(['%s'] * len(columns.split(',')))}) ON CONFLICT DO NOTHING",
            rows,
        )
    return len(read["keys"])


_ACCESS_COLUMNS = {  # tenants first: keys refer to them
    "tenants": "name, limits, created",
    "keys": "id, hash, tenant, agents, admin, limits, label, created, expires, revoked",
    "operators": "name, secret, active, last_step, created",
}
_ACCESS_BOOLEANS = {"keys": 4, "operators": 2}  # the column holding a flag
