"""Agents' information-flow policies set by an operator, overriding `[agents.policy]`.

Kept in one 0600 JSON file in the data directory, replaced atomically, so a running server
and the command line see the same overrides: `get` re-reads the file only when it changed.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from milliwatt.config import PolicyConfig

OVERRIDES_NAME = "policy-overrides.json"


def parse_policy(body: object) -> PolicyConfig:
    """A policy from a JSON object, or ValueError naming each unknown key and bad value."""
    if not isinstance(body, dict):
        raise ValueError('the policy must be a JSON object, e.g. {"send_to": ["*@example.org"]}')
    try:
        return PolicyConfig.model_validate(body)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()
        ]
        raise ValueError("invalid policy: " + "; ".join(problems)) from None


class PolicyOverrides:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / OVERRIDES_NAME
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) last read
        self._cache: dict[str, PolicyConfig] = {}

    def all(self) -> dict[str, PolicyConfig]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._seen, self._cache = None, {}
                return {}
            if self._seen != (stat.st_ino, stat.st_mtime_ns, stat.st_size):
                try:
                    raw: dict[str, Any] = json.loads(self.path.read_text())
                    self._cache = {name: parse_policy(p) for name, p in raw.items()}
                except (ValueError, AttributeError) as exc:  # edited by hand: say where
                    raise ValueError(f"{self.path}: not valid policy overrides: {exc}") from None
                self._seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            return dict(self._cache)

    def get(self, agent: str) -> PolicyConfig | None:
        """The override for `agent`, or None: what the runtime asks before each request."""
        return self.all().get(agent)

    def set(self, agent: str, policy: PolicyConfig) -> None:
        self._write(self.all() | {agent: policy})

    def reset(self, agent: str) -> bool:
        """Drop the override; False when there was none."""
        current = self.all()
        if current.pop(agent, None) is None:
            return False
        self._write(current)
        return True

    def _write(self, overrides: dict[str, PolicyConfig]) -> None:
        data = {name: p.model_dump(mode="json") for name, p in sorted(overrides.items())}
        partial = self.path.with_name(f".{OVERRIDES_NAME}.{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)  # readers see the old overrides or the new, never half
