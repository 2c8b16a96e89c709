"""Storage backends below memory, knowledge and the audit trail: which one `[storage] url`
selects (SQLite files by default, PostgreSQL on request), PostgreSQL pools and migrations.

A leaf: it imports only errors of milliwatt (its command, config). psycopg is imported only
when PostgreSQL is used.
"""

from milliwatt.storage.url import StorageTarget, StorageUrlError, parse_storage_url, redact

__all__ = ["StorageTarget", "StorageUrlError", "parse_storage_url", "redact"]
