"""The access state `milliwatt doctor` reports: keys, operators, the limiter, whether a
server runs without authentication, and whether the audit trail's chain is whole."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from milliwatt.access.access_db import DATABASE_NAME
from milliwatt.access.admin import postgres_trail_url, trail_path
from milliwatt.access.keys import KeyInfo, KeyStore
from milliwatt.access.operators import Operator, OperatorStore
from milliwatt.config import AccessConfig
from milliwatt.errors import MilliwattError
from milliwatt.shield.audit_trail import verify

NO_AUTH_MARKER = "serving-without-auth.json"  # written by `serve --no-auth` while it runs


def no_auth_server(data_dir: Path) -> dict[str, Any] | None:
    """The running `serve --no-auth` of this data directory, if there is one."""
    marker = data_dir / NO_AUTH_MARKER
    try:
        info = json.loads(marker.read_text())
        os.kill(int(info["pid"]), 0)  # raises when that process is gone
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if isinstance(info, dict) else None


def access_report(
    data_dir: Path, config: AccessConfig, storage_url: str | None = None
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    unsafe = no_auth_server(data_dir)
    try:
        infos, people = _keys_and_operators(data_dir, storage_url)
    except MilliwattError as exc:  # the database is unreachable or its schema unusable
        return {"auth": f"error: keys and operators cannot be read: {exc}"}
    active = [k for k in infos if k.state() == "active"]
    if unsafe is not None:
        report["auth"] = (
            f"warning: OFF: `serve --no-auth` (pid {unsafe['pid']}) serves "
            f"{unsafe['host']}:{unsafe['port']} without authentication"
        )
    elif infos:
        report["auth"] = "API keys required"
    else:
        report["auth"] = "no API key: serve answers on loopback only"
    tenants = sorted({k.tenant for k in active})
    report["keys"] = f"{len(active)} active of {len(infos)}" + (
        f" (tenants: {', '.join(tenants)})" if tenants else ""
    )
    confirmed = [o.name for o in people if o.active]
    report["operators"] = (
        f"{len(confirmed)} active: {', '.join(confirmed)}" if confirmed else "none enrolled"
    )
    report["limiter"] = config.limiter + (
        f" at {config.redis_url}" if config.limiter == "redis" else ""
    )
    trail, url = trail_path(data_dir), postgres_trail_url(storage_url)
    if url is not None:
        report["audit_trail"] = _postgres_trail(url)
    elif trail.is_file():
        verdict = verify(trail)
        report["audit_trail"] = (
            f"intact, {verdict.records} records"
            if verdict.ok
            else f"error: BROKEN at {verdict.findings[0]} (`milliwatt audit verify`)"
        )
    else:
        report["audit_trail"] = "empty"
    return report


def _keys_and_operators(
    data_dir: Path, storage_url: str | None
) -> tuple[list[KeyInfo], list[Operator]]:
    if postgres_trail_url(storage_url) is None and not (data_dir / DATABASE_NAME).is_file():
        return [], []
    keys, operators = KeyStore(data_dir, storage_url), OperatorStore(data_dir, storage_url)
    try:
        return keys.list(), operators.list()
    finally:
        keys.close()
        operators.close()


def _postgres_trail(url: str) -> str:
    from milliwatt.shield.audit_trail_postgres import verify_postgres
    from milliwatt.storage.postgres import DatabaseUnavailableError

    try:
        verdict = verify_postgres(url)
    except DatabaseUnavailableError as exc:
        return f"error: {exc}"
    if not verdict.ok:
        return f"error: BROKEN at {verdict.findings[0]} (`milliwatt audit verify`)"
    return f"intact, {verdict.records} records (PostgreSQL)" if verdict.records else "empty"
