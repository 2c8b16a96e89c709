"""The knowledge database: collections, documents and chunks in SQLite, full text in FTS5.

SQLite is the source of truth, vectors included (a float32 blob per chunk); the vector index
beside it is derived from these rows and rebuilt from them whenever it is missing or stale.
Each collection carries a generation number, bumped in the same transaction as any change
to its chunks, which names the index file that matches it.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    name TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE (tenant, agent, name)
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    ingested_at REAL NOT NULL,
    UNIQUE (collection_id, source)
);
-- AUTOINCREMENT: chunk ids are the vector index's keys and must never be reused
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    heading TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.id, old.text, old.heading);
END;
"""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class CollectionKey:
    """A collection is scoped by tenant and agent: two agents never share one by accident."""

    tenant: str
    agent: str
    name: str

    def __post_init__(self) -> None:
        for field_name in ("tenant", "agent", "name"):
            value = getattr(self, field_name)
            if not _NAME.match(value):
                raise ValueError(
                    f"invalid collection {field_name} {value!r}: use 1-64 letters, digits, "
                    "'_', '.' or '-', starting with a letter or digit"
                )

    def __str__(self) -> str:
        return f"{self.tenant}/{self.agent}/{self.name}"


@dataclass(frozen=True)
class Collection:
    id: int
    key: CollectionKey
    dimension: int
    generation: int


@dataclass(frozen=True)
class ChunkRow:
    id: int
    source: str
    heading: str
    start: int
    end: int
    text: str


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a knowledge database; transactions are explicit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")  # readers go on while an ingest writes
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(_SCHEMA)
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """All or nothing: an exception inside rolls every change back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_collection(conn: sqlite3.Connection, key: CollectionKey) -> Collection | None:
    row = conn.execute(
        "SELECT id, dimension, generation FROM collections "
        "WHERE tenant = ? AND agent = ? AND name = ?",
        (key.tenant, key.agent, key.name),
    ).fetchone()
    return Collection(row[0], key, row[1], row[2]) if row else None


def list_collections(conn: sqlite3.Connection, tenant: str, agent: str) -> list[Collection]:
    rows = conn.execute(
        "SELECT id, name, dimension, generation FROM collections "
        "WHERE tenant = ? AND agent = ? ORDER BY name",
        (tenant, agent),
    ).fetchall()
    return [Collection(r[0], CollectionKey(tenant, agent, r[1]), r[2], r[3]) for r in rows]


def ensure_collection(conn: sqlite3.Connection, key: CollectionKey, dimension: int) -> Collection:
    existing = get_collection(conn, key)
    if existing is not None:
        if existing.dimension != dimension:
            raise ValueError(
                f"collection {key} holds {existing.dimension}-dimensional vectors, not {dimension}"
            )
        return existing
    conn.execute(
        "INSERT INTO collections (tenant, agent, name, dimension, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (key.tenant, key.agent, key.name, dimension, time.time()),
    )
    created = get_collection(conn, key)
    assert created is not None
    return created


def bump_generation(conn: sqlite3.Connection, collection_id: int) -> int:
    conn.execute(
        "UPDATE collections SET generation = generation + 1 WHERE id = ?", (collection_id,)
    )
    return _integer(conn, "SELECT generation FROM collections WHERE id = ?", (collection_id,))


def document_hash(conn: sqlite3.Connection, collection_id: int, source: str) -> str | None:
    row = conn.execute(
        "SELECT content_hash FROM documents WHERE collection_id = ? AND source = ?",
        (collection_id, source),
    ).fetchone()
    return row[0] if row else None


def document_sources(conn: sqlite3.Connection, collection_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT source FROM documents WHERE collection_id = ? ORDER BY source", (collection_id,)
    )
    return [r[0] for r in rows]


def delete_document(conn: sqlite3.Connection, collection_id: int, source: str) -> list[int]:
    """Remove a document and its chunks; returns the removed chunk ids."""
    row = conn.execute(
        "SELECT id FROM documents WHERE collection_id = ? AND source = ?",
        (collection_id, source),
    ).fetchone()
    if row is None:
        return []
    ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE document_id = ?", row)]
    conn.execute("DELETE FROM chunks WHERE document_id = ?", row)  # the trigger syncs FTS
    conn.execute("DELETE FROM documents WHERE id = ?", row)
    return ids


def insert_document(
    conn: sqlite3.Connection,
    collection_id: int,
    source: str,
    content_hash: str,
    chunks: list[tuple[str, int, int, str]],
    vectors: np.ndarray,
) -> list[int]:
    """Store a document's (heading, start, end, text) chunks; returns their new ids."""
    cursor = conn.execute(
        "INSERT INTO documents (collection_id, source, content_hash, ingested_at) "
        "VALUES (?, ?, ?, ?)",
        (collection_id, source, content_hash, time.time()),
    )
    document_id = cursor.lastrowid
    ids: list[int] = []
    for (heading, start, end, text), vector in zip(chunks, vectors, strict=True):
        cursor = conn.execute(
            'INSERT INTO chunks (document_id, heading, start, "end", text, vector) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            (document_id, heading, start, end, text, vector.astype(np.float32).tobytes()),
        )
        assert cursor.lastrowid is not None
        ids.append(cursor.lastrowid)
    return ids


def all_vectors(conn: sqlite3.Connection, collection_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Every chunk id and vector of a collection, to (re)build its index."""
    rows = conn.execute(
        "SELECT c.id, c.vector FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE d.collection_id = ? ORDER BY c.id",
        (collection_id,),
    ).fetchall()
    keys = np.array([r[0] for r in rows], dtype=np.uint64)
    if not rows:
        return keys, np.zeros((0, 0), dtype=np.float32)
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
    return keys, vectors.reshape(len(rows), -1)


def chunk_count(conn: sqlite3.Connection, collection_id: int) -> int:
    return _integer(
        conn,
        "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE d.collection_id = ?",
        (collection_id,),
    )


def document_count(conn: sqlite3.Connection, collection_id: int) -> int:
    return _integer(
        conn, "SELECT count(*) FROM documents WHERE collection_id = ?", (collection_id,)
    )


def _integer(conn: sqlite3.Connection, sql: str, parameters: tuple[object, ...]) -> int:
    """The one integer a `SELECT count(*)`-like query answers."""
    value = conn.execute(sql, parameters).fetchone()[0]
    return int(value)


def full_text_search(
    conn: sqlite3.Connection, collection_ids: list[int], match: str, limit: int
) -> list[int]:
    """Chunk ids ranked by BM25 for an FTS5 MATCH expression, best first."""
    marks = ",".join("?" * len(collection_ids))
    rows = conn.execute(
        "SELECT chunks_fts.rowid FROM chunks_fts "
        "JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id "
        f"WHERE chunks_fts MATCH ? AND d.collection_id IN ({marks}) "
        "ORDER BY bm25(chunks_fts) LIMIT ?",
        (match, *collection_ids, limit),
    ).fetchall()
    return [r[0] for r in rows]


def get_chunks(conn: sqlite3.Connection, ids: list[int]) -> dict[int, ChunkRow]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        'SELECT c.id, d.source, c.heading, c.start, c."end", c.text '
        f"FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
        ids,
    ).fetchall()
    return {r[0]: ChunkRow(*r) for r in rows}


def get_vectors(conn: sqlite3.Connection, ids: list[int]) -> dict[int, np.ndarray]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", ids).fetchall()
    return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}
