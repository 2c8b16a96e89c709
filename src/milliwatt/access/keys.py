"""API keys and tenants, in the data directory's SQLite or in the PostgreSQL database of
`[storage] url` (access_db.py); keys are stored as hashes only.

A key reads `mw_<id>_<secret>`: a 10-character id (shown by `keys list`, named in the audit
trail) and 32 random bytes. The store keeps the SHA-256 of the whole key: the secret has 256
bits of entropy, so a slow password hash would add latency and no safety. Every
authentication reads the key's row (nothing is cached), so a revocation holds for the next
request of every process sharing the data directory or the database.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from milliwatt.access.access_db import DATABASE_NAME, open_access_database
from milliwatt.access.limits import Limits
from milliwatt.errors import AuthenticationError

KEY_PREFIX = "mw_"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_KEY_FORM = re.compile(r"mw_([a-z0-9]{10})_([A-Za-z0-9_-]{43})\Z")
_TENANT_FORM = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
_AGENT_FORM = re.compile(r"[\w.-]{1,64}\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    limits TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    agents TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    limits TEXT NOT NULL DEFAULT '{}',
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    expires REAL,
    revoked REAL
);
"""


class AuthError(AuthenticationError):
    """A key that does not authenticate; `code` says which way (OpenAI's error codes)."""


@dataclass(frozen=True)
class Principal:
    """Who a request is: its tenant, its key, what it may use and its limits."""

    tenant: str
    key_id: str | None
    agents: tuple[str, ...] = ("*",)
    admin: bool = False
    limits: Limits = field(default_factory=Limits)
    tenant_limits: Limits = field(default_factory=Limits)

    def may_use(self, agent: str) -> bool:
        return "*" in self.agents or agent in self.agents

    def scope(self, name: str) -> str:
        """A session or caller name in this tenant's namespace: tenant names hold no ":",
        so "a:" + "b:ada" can never equal "b:" + "ada"."""
        return name if self.key_id is None else f"{self.tenant}:{name}"


# the caller when no key is configured: the local machine, one tenant, names unprefixed
LOCAL = Principal(tenant="default", key_id=None, admin=True)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    tenant: str
    agents: tuple[str, ...]
    admin: bool
    limits: Limits
    label: str
    created: float
    expires: float | None
    revoked: float | None

    def state(self, now: float | None = None) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= (now or time.time()):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"state": self.state(), "limits": self.limits.to_dict()}


def check_tenant(name: str) -> str:
    if not _TENANT_FORM.match(name):
        raise ValueError(
            f"invalid tenant {name[:40]!r}: use 1-32 lower-case letters, digits, _ or -, "
            "starting with a letter or digit"
        )
    return name


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


class KeyStore:
    def __init__(self, data_dir: Path, storage_url: str | None = None) -> None:
        self.path = Path(data_dir) / DATABASE_NAME  # policy overrides sit beside it, either way
        self._db = open_access_database(data_dir, storage_url, _SCHEMA)

    def create(
        self,
        tenant: str,
        *,
        agents: tuple[str, ...] = ("*",),
        admin: bool = False,
        limits: Limits | None = None,
        expires_in: float | None = None,
        label: str = "",
    ) -> tuple[str, KeyInfo]:
        """A new key (the only time its secret exists outside the caller) and its record."""
        check_tenant(tenant)
        for agent in agents:
            if agent != "*" and not _AGENT_FORM.match(agent):
                raise ValueError(f"invalid agent name {agent[:40]!r}")
        if expires_in is not None and expires_in <= 0:
            raise ValueError("a key's lifetime must be positive")
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        info = KeyInfo(
            key_id, tenant, tuple(agents), admin, limits or Limits(), label[:200], now,
            None if expires_in is None else now + expires_in, None,
        )  # fmt: skip
        self._db.write(
            ("INSERT INTO tenants (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
             (tenant, now)),
            ("INSERT INTO keys (id, hash, tenant, agents, admin, limits, label, created, expires)"
             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (key_id, hash_key(key), tenant, json.dumps(list(agents)), bool(admin),
              json.dumps(info.limits.to_dict()), info.label, now, info.expires)),
        )  # fmt: skip
        return key, info

    def authenticate(self, key: str, now: float | None = None) -> Principal:
        """The principal of a presented key, or AuthError saying what is wrong with it."""
        match = _KEY_FORM.match(key)
        if match is None:
            if not key.startswith(KEY_PREFIX):
                raise AuthError("the API key is not a milliwatt key (they start with mw_)")
            raise AuthError("the API key is malformed (was it cut short when pasted?)")
        rows = self._db.query(
            "SELECT k.hash, k.tenant, k.agents, k.admin, k.limits, k.expires, k.revoked,"
            " t.limits FROM keys k JOIN tenants t ON t.name = k.tenant WHERE k.id = ?",
            (match.group(1),),
        )
        row = rows[0] if rows else None
        if row is None or not hmac.compare_digest(row[0], hash_key(key)):
            raise AuthError("the API key is not known")
        if row[6] is not None:
            raise AuthError("the API key was revoked", code="revoked_api_key")
        if row[5] is not None and row[5] <= (now or time.time()):
            raise AuthError("the API key has expired", code="expired_api_key")
        return Principal(
            tenant=row[1], key_id=match.group(1), agents=tuple(json.loads(row[2])),
            admin=bool(row[3]), limits=Limits.from_dict(json.loads(row[4])),
            tenant_limits=Limits.from_dict(json.loads(row[7])),
        )  # fmt: skip

    def revoke(self, key_id: str) -> KeyInfo:
        key_id = key_id.removeprefix(KEY_PREFIX).split("_")[0]
        changed = self._db.write(
            ("UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), key_id))
        )
        info = self.get(key_id)
        if info is None:
            raise ValueError(f"no key with id {key_id!r}; `milliwatt keys list` shows them")
        if changed == 0:
            raise ValueError(f"the key {key_id!r} was already revoked")
        return info

    def get(self, key_id: str) -> KeyInfo | None:
        found = self._select(" WHERE id = ?", (key_id,))
        return found[0] if found else None

    def list(self, tenant: str | None = None) -> list[KeyInfo]:
        if tenant:
            return self._select(" WHERE tenant = ? ORDER BY created", (tenant,))
        return self._select(" ORDER BY created", ())

    def _select(self, where: str, args: tuple[str, ...]) -> builtins.list[KeyInfo]:
        query = (
            "SELECT id, tenant, agents, admin, limits, label, created, expires, revoked FROM keys"
        )
        rows = self._db.query(query + where, args)
        return [
            KeyInfo(r[0], r[1], tuple(json.loads(r[2])), bool(r[3]),
                    Limits.from_dict(json.loads(r[4])), r[5], r[6], r[7], r[8])
            for r in rows
        ]  # fmt: skip

    def has_keys(self) -> bool:
        """Whether any key was ever created: from then on every request but the public paths
        needs one (revoking the last key must not open the server to everyone)."""
        return bool(self._db.query("SELECT 1 FROM keys LIMIT 1"))

    def set_tenant_limits(self, tenant: str, limits: Limits) -> None:
        check_tenant(tenant)
        self._db.write(
            ("INSERT INTO tenants (name, limits, created) VALUES (?, ?, ?) "
             "ON CONFLICT (name) DO UPDATE SET limits = excluded.limits",
             (tenant, json.dumps(limits.to_dict()), time.time())),
        )  # fmt: skip

    def tenant_limits(self, tenant: str) -> Limits:
        rows = self._db.query("SELECT limits FROM tenants WHERE name = ?", (tenant,))
        return Limits.from_dict(json.loads(rows[0][0])) if rows else Limits()

    def close(self) -> None:
        self._db.close()


def parse_duration(text: str) -> float:
    """Seconds in "90s", "15m", "12h", "30d" or "2w"."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match is None:
        raise ValueError(f"invalid duration {text[:40]!r}: write e.g. 30d, 12h, 15m")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    seconds = int(match.group(1)) * unit
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return float(seconds)
