"""`[storage] url`: parsing with errors that name the fault, PostgreSQL pools and migrations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.conftest import free_port

from milliwatt.config import load_settings
from milliwatt.storage import StorageUrlError, parse_storage_url, redact


def test_unset_means_sqlite_in_the_data_directory() -> None:
    assert parse_storage_url(None).backend == "sqlite"
    assert parse_storage_url("  ").backend == "sqlite"
    target = parse_storage_url("postgresql://mw@db.internal:5433/milliwatt")
    assert (target.backend, target.url) == (
        "postgres",
        "postgresql://mw@db.internal:5433/milliwatt",
    )
    assert parse_storage_url("postgres://mw@db/milliwatt?sslmode=require").backend == "postgres"
    assert parse_storage_url("postgresql:///milliwatt?host=/run/postgresql").backend == "postgres"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("mysql://root@db/milliwatt", "'mysql' is not supported"),
        ("sqlite:///tmp/x.db", "'sqlite' is not supported"),
        ("db.internal:5432/milliwatt", "is not supported"),
        ("postgresql://mw@db.internal:5432", "names no database"),
        ("postgresql:///milliwatt", "names no host"),
        ("postgresql://mw@db.internal:port/milliwatt", "is not a URL"),
        ("postgresql://mw@db.internal:0/milliwatt", "port 0"),
    ],
)
def test_a_bad_url_is_refused_naming_the_fault(url: str, named: str) -> None:
    with pytest.raises(StorageUrlError, match=named):
        parse_storage_url(url)


def test_a_password_never_appears_in_an_error() -> None:
    with pytest.raises(StorageUrlError) as raised:
        parse_storage_url("postgresql://mw:hunter2@db.internal:5432")
    assert "hunter2" not in str(raised.value) and "mw:***@db.internal" in str(raised.value)
    assert redact("postgresql://mw:s3cret@h/db") == "postgresql://mw:***@h/db"
    assert redact("postgresql://mw@h/db") == "postgresql://mw@h/db"


def test_the_environment_selects_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLIWATT_STORAGE__URL", "postgresql://postgres@127.0.0.1:5432/test")
    assert load_settings().storage.url == "postgresql://postgres@127.0.0.1:5432/test"
    monkeypatch.setenv("MILLIWATT_STORAGE__URL", "redis://127.0.0.1/0")
    with pytest.raises(ValueError, match=r"storage\.url scheme 'redis' is not supported"):
        load_settings()
    monkeypatch.delenv("MILLIWATT_STORAGE__URL")
    assert load_settings().storage.url is None


def test_an_unreachable_server_is_a_clear_error() -> None:
    pytest.importorskip("psycopg")
    from milliwatt.storage.postgres import DatabaseUnavailableError, database

    url = f"postgresql://mw:hunter2@127.0.0.1:{free_port()}/milliwatt"
    with pytest.raises(DatabaseUnavailableError) as raised:
        database(url)
    assert "unavailable" in str(raised.value) and "hunter2" not in str(raised.value)


def test_nodes_starting_together_migrate_once(postgres_url: str) -> None:
    from milliwatt.storage.migrations import MIGRATIONS
    from milliwatt.storage.postgres import PostgresDatabase

    start = threading.Barrier(4)
    opened: list[PostgresDatabase] = []
    failures: list[BaseException] = []

    def node() -> None:
        start.wait()
        try:
            opened.append(PostgresDatabase(postgres_url, max_size=1))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=node) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [db.schema_version for db in opened] == [len(MIGRATIONS)] * 4
    with opened[0].connection() as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS) + 1))
    for db in opened:
        db.close()


def test_a_schema_newer_than_this_milliwatt_is_refused(postgres_url: str) -> None:
    from milliwatt.storage.migrations import SchemaTooNewError
    from milliwatt.storage.postgres import PostgresDatabase

    db = PostgresDatabase(postgres_url, max_size=1)
    with db.connection() as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (999)")
    db.close()
    with pytest.raises(SchemaTooNewError, match="version 999, newer"):
        PostgresDatabase(postgres_url, max_size=1)


def test_connections_lost_to_a_server_restart_are_replaced(
    postgres_url: str, tmp_path: Path
) -> None:
    import psycopg

    from milliwatt.memory.sessions import TurnCost
    from milliwatt.memory.stores import open_session_store
    from milliwatt.models.base import Message
    from milliwatt.storage.postgres import database

    store = open_session_store(tmp_path, postgres_url)
    store.append_turn("ada", "milliwatt", [Message("user", "before")], TurnCost())
    with database(postgres_url).connection() as conn:
        row = conn.execute(
            "SELECT pg_backend_pid(), current_setting('application_name')"
        ).fetchone()
    assert row is not None and row[1] == "milliwatt"
    # what a restart does to each pooled connection: the server ends its session
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
    store.append_turn("ada", "milliwatt", [Message("user", "after")], TurnCost())
    assert [m.content for m in store.history("ada")] == ["before", "after"]


def test_a_search_path_naming_no_schema_is_a_clear_error(postgres_url: str) -> None:
    from milliwatt.storage.migrations import SchemaError
    from milliwatt.storage.postgres import PostgresDatabase

    missing = postgres_url.replace("mw_test_", "mw_absent_")
    with pytest.raises(SchemaError, match=r"no schema of the search_path \(mw_absent_"):
        PostgresDatabase(missing, max_size=1)


def test_an_older_schema_gets_only_the_steps_it_lacks(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import milliwatt.storage.migrations as migrations
    from milliwatt.storage.postgres import PostgresDatabase

    every_step = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", every_step[:1])  # an older milliwatt
    old = PostgresDatabase(postgres_url, max_size=1)
    assert old.schema_version == 1
    with old.connection() as conn:
        conn.execute("INSERT INTO sessions VALUES ('ada', 'milliwatt', now(), now())")
    old.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", every_step)  # this one
    new = PostgresDatabase(postgres_url, max_size=1)
    assert new.schema_version == len(every_step)
    with new.connection() as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        kept = conn.execute("SELECT name FROM sessions").fetchall()
        conn.execute("SELECT count(*) FROM audit_trail")  # the newest step's table is there
    new.close()
    assert versions == list(range(1, len(every_step) + 1)) and kept == [("ada",)]
