"""The PostgreSQL schema as a numbered list of steps, applied in order when a database opens.

`schema_version` holds one row per step applied. All pending steps run in one transaction
under a transaction-level advisory lock keyed by the schema, so two nodes starting together
take turns: the second finds the steps applied and does nothing. A step, once released, is
never edited: a change is a new step at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milliwatt.errors import MilliwattError

if TYPE_CHECKING:
    import psycopg

# the advisory lock's first key: milliwatt's own, beside the schema's hash as the second
LOCK_CLASS = 0x6D77  # "mw"

SESSIONS = """
CREATE TABLE sessions (
    name text PRIMARY KEY,
    agent text NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);
CREATE TABLE turns (
    id bigserial PRIMARY KEY,
    session text NOT NULL REFERENCES sessions(name),
    created timestamptz NOT NULL,
    tokens bigint NOT NULL,
    model_calls bigint NOT NULL,
    seconds double precision NOT NULL,
    joules_est double precision NOT NULL
);
CREATE TABLE messages (
    id bigserial PRIMARY KEY,
    session text NOT NULL REFERENCES sessions(name),
    turn bigint NOT NULL REFERENCES turns(id),
    role text NOT NULL,
    content text NOT NULL,
    tool_calls jsonb,
    tool_call_id text,
    name text
);
CREATE INDEX messages_by_session ON messages(session, id);
CREATE INDEX turns_by_session ON turns(session);
CREATE INDEX sessions_by_updated ON sessions(updated DESC, name);
"""

# English stemming as SQLite's porter tokenizer does it, stop words kept as FTS5 keeps them
# ("who is my doctor" still matches on "my"); the configuration lives in the schema
FACTS = """
CREATE TEXT SEARCH DICTIONARY milliwatt_english_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION milliwatt_english (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION milliwatt_english
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH milliwatt_english_stem;
-- tokens in a tsvector (the length BM25 normalises by): each lexeme's positions, summed
-- (PL/pgSQL: 2-3x cheaper per inserted row, measured, than the same query as a SQL function)
CREATE FUNCTION milliwatt_tokens(words tsvector) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(array_length(positions, 1)), 0) FROM unnest(words));
END $$;
CREATE TABLE facts (
    id bigserial PRIMARY KEY,
    "user" text NOT NULL,
    agent text NOT NULL,
    text text NOT NULL,
    source text NOT NULL,
    created_at double precision NOT NULL,
    vector bytea NOT NULL,  -- float32, the embedder's byte order, as in SQLite
    words tsvector GENERATED ALWAYS AS (to_tsvector('milliwatt_english', text)) STORED,
    tokens bigint GENERATED ALWAYS AS
        (milliwatt_tokens(to_tsvector('milliwatt_english', text))) STORED,
    UNIQUE ("user", agent, text)
);
CREATE INDEX facts_words ON facts USING gin (words) WITH (fastupdate = off);
CREATE INDEX facts_by_scope ON facts ("user", agent, created_at DESC, id DESC);
"""

CALENDARS = """
CREATE TABLE calendar_events (
    id text PRIMARY KEY,
    "user" text NOT NULL,
    title text NOT NULL,
    start_at bigint NOT NULL,  -- UTC epoch seconds
    end_at bigint NOT NULL,
    created bigint NOT NULL
);
CREATE INDEX calendar_events_by_user ON calendar_events ("user", start_at);
"""

# chunk ids are the IVF index's keys: bigserial never hands one out twice, as AUTOINCREMENT
KNOWLEDGE = """
CREATE TABLE knowledge_collections (
    id bigserial PRIMARY KEY,
    tenant text NOT NULL,
    agent text NOT NULL,
    name text NOT NULL,
    dimension integer NOT NULL,
    generation bigint NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    -- for BM25: the collection's chunks and their tokens, kept with every change
    chunks bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    UNIQUE (tenant, agent, name)
);
CREATE TABLE knowledge_documents (
    id bigserial PRIMARY KEY,
    collection_id bigint NOT NULL REFERENCES knowledge_collections(id) ON DELETE CASCADE,
    source text NOT NULL,
    content_hash text NOT NULL,
    ingested_at double precision NOT NULL,
    UNIQUE (collection_id, source)
);
CREATE TABLE knowledge_chunks (
    id bigserial PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
    heading text NOT NULL,
    start_at integer NOT NULL,
    end_at integer NOT NULL,
    text text NOT NULL,
    vector bytea NOT NULL,  -- float32
    words tsvector GENERATED ALWAYS AS
        (to_tsvector('milliwatt_english', heading || ' ' || text)) STORED,
    -- the chunk's length for BM25, kept rather than counted at every search
    tokens bigint GENERATED ALWAYS AS
        (milliwatt_tokens(to_tsvector('milliwatt_english', heading || ' ' || text))) STORED
);
CREATE INDEX knowledge_chunks_by_document ON knowledge_chunks(document_id);
-- fastupdate off: new chunks go into the index at once, not into a pending list that
-- every search scans row by row until the next vacuum (the planner then scans the table)
CREATE INDEX knowledge_chunks_words ON knowledge_chunks USING gin (words)
    WITH (fastupdate = off);
"""

# each record's JSON text exactly as hashed (shield/audit_trail.py), never re-serialised
AUDIT_TRAIL = """
CREATE TABLE audit_trail (
    seq bigint PRIMARY KEY,
    record text NOT NULL
);
CREATE TABLE audit_checkpoints (
    seq bigint PRIMARY KEY,
    mark text NOT NULL
);
"""

# API keys (hashes only), tenants, operators (TOTP) and failed codes: access/access_db.py;
# JSON as text, read back as SQLite's; times as epoch seconds
ACCESS = """
CREATE TABLE tenants (
    name text PRIMARY KEY,
    limits text NOT NULL DEFAULT '{}',
    created double precision NOT NULL
);
CREATE TABLE keys (
    id text PRIMARY KEY,
    hash text NOT NULL,
    tenant text NOT NULL REFERENCES tenants(name),
    agents text NOT NULL,
    admin boolean NOT NULL DEFAULT false,
    limits text NOT NULL DEFAULT '{}',
    label text NOT NULL DEFAULT '',
    created double precision NOT NULL,
    expires double precision,
    revoked double precision
);
CREATE INDEX keys_by_tenant ON keys (tenant, created);
CREATE TABLE operators (
    name text PRIMARY KEY,
    secret text NOT NULL,
    active boolean NOT NULL DEFAULT false,
    last_step bigint NOT NULL DEFAULT -1,
    created double precision NOT NULL
);
CREATE TABLE otp_failures (
    operator text NOT NULL,
    "time" double precision NOT NULL
);
CREATE INDEX otp_failures_by_operator ON otp_failures (operator, "time");
"""

# the step at place N is schema version N
MIGRATIONS: tuple[str, ...] = (
    SESSIONS,  # 1
    FACTS,  # 2: with the text search configuration and milliwatt_tokens()
    CALENDARS,  # 3
    KNOWLEDGE,  # 4
    AUDIT_TRAIL,  # 5
    ACCESS,  # 6
)


class SchemaError(MilliwattError):
    """The database's schema cannot be used: missing, or newer than this milliwatt."""


class SchemaTooNewError(SchemaError):
    """The database was migrated by a newer milliwatt than this one."""


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply the steps this database lacks; the schema version it is at afterwards."""
    with conn.transaction():
        row = conn.execute("SELECT current_schema(), current_setting('search_path')").fetchone()
        if row is None or row[0] is None:  # (and the lock below would take NULL: no lock)
            shown = row[1] if row else "?"
            raise SchemaError(
                f"storage.url: no schema of the search_path ({shown}) exists in this "
                "database; create it first (CREATE SCHEMA ...)"
            )
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, row[0]))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise SchemaTooNewError(
                f"the database schema is at version {current}, newer than this milliwatt "
                f"knows ({len(MIGRATIONS)}): upgrade milliwatt on this node"
            )
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            conn.execute(step.encode())  # bytes: run as the one script it is, no parameters
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        return len(MIGRATIONS)
