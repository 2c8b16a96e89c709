"""Where milliwatt keeps its data: `[storage] url`, parsed once with errors that name the fault.

Unset (the default) means SQLite files in the data directory: one process, nothing to set up.
`postgresql://user@host:port/database` puts sessions, facts, calendars and knowledge in one
PostgreSQL database that several nodes share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")


class StorageUrlError(ValueError):
    """A `[storage] url` that does not name a database milliwatt can use."""


@dataclass(frozen=True)
class StorageTarget:
    backend: Literal["sqlite", "postgres"]
    url: str | None = None  # the libpq URL (credentials included) for postgres

    @property
    def shown(self) -> str:
        """The URL with any password masked, for messages and `doctor`."""
        return "sqlite (the data directory)" if self.url is None else redact(self.url)


def parse_storage_url(url: str | None) -> StorageTarget:
    """The backend a `[storage] url` selects, or StorageUrlError naming what is wrong."""
    if url is None or not url.strip():
        return StorageTarget("sqlite")
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # reads the port: a non-number raises ValueError here
    except ValueError as exc:
        raise StorageUrlError(f"storage.url {redact(text)!r} is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in POSTGRES_SCHEMES:
        raise StorageUrlError(
            f"storage.url scheme {scheme or '(none)'!r} is not supported: use "
            "postgresql://user@host:5432/database, or leave storage.url unset for SQLite "
            "files in the data directory"
        )
    _check_postgres(parts, port, text)
    return StorageTarget("postgres", text)


def _check_postgres(parts: SplitResult, port: int | None, text: str) -> None:
    # a host may also come as ?host=/run/postgresql (a Unix socket directory)
    if not parts.hostname and "host=" not in parts.query:
        raise StorageUrlError(f"storage.url {redact(text)!r} names no host")
    if port == 0:
        raise StorageUrlError(f"storage.url {redact(text)!r}: port 0 is not a server's port")
    database = parts.path.lstrip("/")
    if not database and "dbname=" not in parts.query:
        raise StorageUrlError(
            f"storage.url {redact(text)!r} names no database: add it after the host, "
            "as in postgresql://user@host:5432/milliwatt"
        )
    if "/" in database:
        raise StorageUrlError(f"storage.url {redact(text)!r}: {database!r} is not a database name")


def redact(url: str) -> str:
    """`url` with the password (if any) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()
