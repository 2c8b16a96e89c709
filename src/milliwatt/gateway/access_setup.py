"""What `serve` puts in front of the API for access: keys, limits, the audit trail, and the
safe-by-default rule for the address it binds."""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from milliwatt.access.admin import Admin, open_trail
from milliwatt.access.keys import KeyStore
from milliwatt.access.limits import Limiter, MemoryLimiter
from milliwatt.access.operators import OperatorStore
from milliwatt.access.quota import Quota
from milliwatt.access.status import NO_AUTH_MARKER
from milliwatt.config import AccessConfig, PolicyConfig, private_data_dir
from milliwatt.gateway.admin_api import admin_routes
from milliwatt.gateway.auth import AccessMiddleware
from milliwatt.shield.audit_trail import Trail
from milliwatt.shield.egress import errors as egress_errors


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(data_dir: Path, host: str, no_auth: bool, storage_url: str | None = None) -> None:
    """Refuse to listen beyond loopback with no API key, unless told so explicitly."""
    if no_auth or is_loopback(host):
        return
    keys = KeyStore(private_data_dir(data_dir), storage_url)
    try:
        if not keys.has_keys():
            raise ValueError(
                f"refusing to listen on {host} with no API key: anyone who can reach it could "
                "use every agent. Create a key (`milliwatt keys create --tenant NAME`), "
                "or pass --no-auth to serve without authentication"
            )
    finally:
        keys.close()


def build_limiter(config: AccessConfig) -> Limiter:
    if config.limiter == "memory":
        return MemoryLimiter()
    try:
        from milliwatt.access.redis_limiter import RedisLimiter
    except ImportError:
        raise ValueError(
            'access.limiter = "redis" needs redis-py: pip install "milliwatt[redis]"'
        ) from None
    limiter = RedisLimiter(config.redis_url, config.redis_prefix)
    try:
        limiter.ping()
    except Exception as exc:
        raise ValueError(f"the Redis limiter cannot reach {config.redis_url}: {exc}") from None
    return limiter


@dataclass
class Access:
    keys: KeyStore
    trail: Trail
    quota: Quota
    storage_url: str | None = None  # keys and operators in PostgreSQL when set

    def admin_routes(self, policies: Mapping[str, PolicyConfig]) -> list[BaseRoute]:
        operators = OperatorStore(self.keys.path.parent, self.storage_url)
        return admin_routes(Admin(self.keys, operators, self.trail), policies)

    def wrap(self, app: ASGIApp, *, no_auth: bool) -> ASGIApp:
        return AccessMiddleware(app, self.keys, self.quota, self.trail, no_auth=no_auth)


def build_access(
    data_dir: Path,
    config: AccessConfig,
    *,
    host: str,
    port: int,
    no_auth: bool,
    log: Callable[[str], None],
    storage_url: str | None = None,
) -> Access:
    trail = open_trail(data_dir, storage_url)  # [storage] url: a file, or a PostgreSQL table
    egress_errors.on_blocked(lambda reason: trail.record("egress.blocked", {"reason": reason}))
    keys = KeyStore(data_dir, storage_url)
    access = Access(keys, trail, Quota(build_limiter(config), trail.record), storage_url)
    if no_auth:
        marker = data_dir / NO_AUTH_MARKER
        body = {"pid": os.getpid(), "host": host, "port": port, "since": time.time()}
        marker.write_text(json.dumps(body))
        atexit.register(lambda: marker.unlink(missing_ok=True))
        trail.record("admin.action", {"action": "serve.no_auth", "host": host, "port": port})
        log(
            f"milliwatt: WARNING: --no-auth: NO AUTHENTICATION on {host}:{port}. Anyone who "
            "can reach this port can use every agent and read every session."
        )
    elif keys.has_keys():
        log(f"milliwatt: API keys required; limits counted in {config.limiter}")
    else:
        log("milliwatt: no API key yet: serving the local machine only")
    return access
