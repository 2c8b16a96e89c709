"""Administrative actions, the same from the command line and the admin API: each needs an
active operator's TOTP code, and each is written to the audit trail with who did it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from milliwatt.access.keys import KeyInfo, KeyStore
from milliwatt.access.limits import Limits
from milliwatt.access.operators import OperatorStore, OtpError
from milliwatt.access.policies import PolicyOverrides
from milliwatt.config import PolicyConfig
from milliwatt.shield.audit_trail import AuditTrail, Trail
from milliwatt.storage.url import parse_storage_url

TRAIL_NAME = "audit-trail.jsonl"
NO_OPERATOR = (
    "no operator is enrolled: run `milliwatt admin enroll NAME`, then "
    "`milliwatt admin confirm NAME CODE` with a code from the authenticator app"
)


def trail_path(data_dir: Path) -> Path:
    return Path(data_dir) / TRAIL_NAME


def postgres_trail_url(storage_url: str | None) -> str | None:
    """The PostgreSQL URL the audit trail lives at, or None: the data directory's file."""
    target = parse_storage_url(storage_url)
    return target.url if target.backend == "postgres" else None


def open_trail(data_dir: Path, storage_url: str | None = None) -> Trail:
    """The audit trail `[storage] url` selects: the file in the data directory, or a table."""
    url = postgres_trail_url(storage_url)
    if url is not None:
        # imported here: psycopg is the `postgres` extra, never needed for the file
        from milliwatt.shield.audit_trail_postgres import PostgresAuditTrail

        return PostgresAuditTrail(url)
    return AuditTrail(trail_path(data_dir))


@dataclass
class Admin:
    """Key, tenant and audit administration on one data directory."""

    keys: KeyStore
    operators: OperatorStore
    trail: Trail
    policies: PolicyOverrides = field(init=False)

    def __post_init__(self) -> None:
        self.policies = PolicyOverrides(self.keys.path.parent)

    @classmethod
    def open(cls, data_dir: Path, storage_url: str | None = None) -> Admin:
        trail = open_trail(data_dir, storage_url)
        return cls(KeyStore(data_dir, storage_url), OperatorStore(data_dir, storage_url), trail)

    def authorize(self, operator: str, code: str, action: str, via: str) -> None:
        """Check the operator's code (once), or record the refusal and raise OtpError."""
        if not self.operators.any_active():
            raise OtpError(NO_OPERATOR)
        try:
            self.operators.verify(operator, code)
        except OtpError as exc:
            fields = {"operator": operator, "action": action, "via": via, "reason": str(exc)}
            self.trail.record("admin.refused", fields)
            raise

    def create_key(
        self,
        operator: str,
        code: str,
        tenant: str,
        *,
        agents: tuple[str, ...] = ("*",),
        admin: bool = False,
        limits: Limits | None = None,
        expires_in: float | None = None,
        label: str = "",
        via: str = "cli",
    ) -> tuple[str, KeyInfo]:
        self.authorize(operator, code, "key.create", via)
        key, info = self.keys.create(
            tenant, agents=agents, admin=admin, limits=limits, expires_in=expires_in, label=label
        )
        self.trail.record(
            "key.created",
            {"operator": operator, "via": via, "key_id": info.id, "tenant": tenant,
             "agents": list(agents), "admin": admin, "limits": info.limits.to_dict(),
             "expires": info.expires},
        )  # fmt: skip
        return key, info

    def revoke_key(self, operator: str, code: str, key_id: str, *, via: str = "cli") -> KeyInfo:
        self.authorize(operator, code, "key.revoke", via)
        info = self.keys.revoke(key_id)
        fields = {"operator": operator, "via": via, "key_id": info.id, "tenant": info.tenant}
        self.trail.record("key.revoked", fields)
        return info

    def set_tenant_limits(
        self, operator: str, code: str, tenant: str, limits: Limits, *, via: str = "cli"
    ) -> None:
        self.authorize(operator, code, "tenant.limits", via)
        self.keys.set_tenant_limits(tenant, limits)
        fields = {"operator": operator, "via": via, "tenant": tenant, "limits": limits.to_dict()}
        self.trail.record("admin.action", fields | {"action": "tenant.limits"})

    def set_policy(
        self, operator: str, code: str, agent: str, policy: PolicyConfig, *, via: str = "cli"
    ) -> None:
        """Override `agent`'s whole policy; a running server uses it from its next request."""
        self.authorize(operator, code, "policy.set", via)
        self.policies.set(agent, policy)
        self.trail.record(
            "admin.action",
            {"operator": operator, "via": via, "action": "policy.set", "agent": agent,
             "policy": policy.model_dump(mode="json")},
        )  # fmt: skip

    def reset_policy(self, operator: str, code: str, agent: str, *, via: str = "cli") -> bool:
        """Back to the configured policy; False when there was no override."""
        self.authorize(operator, code, "policy.reset", via)
        removed = self.policies.reset(agent)
        fields = {"operator": operator, "via": via, "action": "policy.reset", "agent": agent}
        self.trail.record("admin.action", fields | {"removed": removed})
        return removed

    def authorize_export(self, operator: str, code: str, *, via: str = "cli") -> None:
        self.authorize(operator, code, "audit.export", via)
        self.trail.record(
            "admin.action", {"operator": operator, "via": via, "action": "audit.export"}
        )

    def close(self) -> None:
        self.keys.close()
        self.operators.close()
        self.trail.close()
