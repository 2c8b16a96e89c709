"""`milliwatt storage`: where the data is, and a copy of a data directory into PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from milliwatt.config import load_settings
from milliwatt.storage.url import parse_storage_url

storage_app = typer.Typer(
    help="Where sessions, facts, calendars and documents live; copy them to PostgreSQL.",
    no_args_is_help=True,
)


def _postgres_url() -> str:
    target = parse_storage_url(load_settings().storage.url)
    if target.url is None:
        raise ValueError(
            "storage.url is not set: name the PostgreSQL database first "
            "(MILLIWATT_STORAGE__URL=postgresql://user@host:5432/db)"
        )
    return target.url


@storage_app.command("status")
def status() -> None:
    """The backend in use and, for PostgreSQL, its schema version and row counts."""
    settings = load_settings()
    target = parse_storage_url(settings.storage.url)
    print(f"backend\t{target.backend}\t{target.shown}")
    if target.url is None:
        print(f"data directory\t{Path(settings.data_dir)}")
        return
    from milliwatt.storage.copy import TARGETS
    from milliwatt.storage.postgres import database

    db = database(target.url)
    print(f"schema version\t{db.schema_version}")
    with db.connection() as conn:
        for kind, table in TARGETS.items():
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            print(f"{kind}\t{row[0] if row else 0} rows in {table}")


@storage_app.command("copy")
def copy(
    data_dir: Annotated[
        Path | None,
        typer.Option("--from", help="The data directory to copy. Default: the configured one."),
    ] = None,
) -> None:
    """Copy a data directory's SQLite sessions, facts, calendars, documents and audit trail
    into the PostgreSQL database of storage.url; a kind already there is skipped."""
    from milliwatt.storage.copy import copy_data_dir

    source = data_dir or Path(load_settings().data_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"no data directory at {source}")
    for kind, outcome in copy_data_dir(source, _postgres_url()).items():
        print(f"{kind}\t{outcome}")
