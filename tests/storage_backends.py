"""Each PostgreSQL test in a schema of its own (`mw_test_<random>`), dropped afterwards: other
suites use the same server at once. Unreachable server or no psycopg: the test is skipped."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

SERVER = os.environ.get("MILLIWATT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def with_search_path(url: str, schema: str) -> str:
    """`url` whose connections all work in `schema` (libpq's options parameter)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A storage URL into a new, empty schema; the schema and its pool go afterwards."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (the postgres extra)")
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {SERVER} is unreachable: {exc}")
    schema = f"mw_test_{secrets.token_hex(6)}"
    url = with_search_path(SERVER, schema)
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield url
        finally:
            from milliwatt.storage.postgres import close_database

            close_database(url)
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
