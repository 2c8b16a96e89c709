"""Rate limits and budgets: what a key or a tenant may use, and the counters that say how much
it has.

Requests per minute are a GCRA (generic cell rate algorithm): one timestamp per key, the
"theoretical arrival time"; a request is allowed when it comes no earlier than one emission
interval (60 s / rpm) before it, less the burst tolerance. With burst 1 no 60-second window
holds more than rpm + 1 requests. Tokens and joules are counted in fixed windows (the minute,
the UTC day) and checked before work starts, like the per-request budgets: a request is
refused once the window's use has reached the limit. Concurrent requests hold a lease each.

`Limiter` is the counters' interface; `MemoryLimiter` keeps them in this process (the
default) and `redis_limiter.RedisLimiter` in Redis, so that several nodes share them.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Protocol

from milliwatt.errors import ServiceUnavailableError

MINUTE = 60
DAY = 86_400


class LimiterUnavailable(ServiceUnavailableError):
    """The counters cannot be reached (Redis down): requests get 503, not a free pass."""

    service = "the rate limiter"
    code = "limiter_unavailable"


@dataclass(frozen=True)
class Limits:
    """Limits of one key or tenant; None is no limit."""

    rpm: int | None = None  # requests per minute (GCRA)
    burst: int = 1  # requests that may come at once within the rpm
    tpm: int | None = None  # tokens per minute
    tokens_per_day: int | None = None
    joules_per_day: float | None = None  # estimated joules (the ledger's joules_est)
    concurrent: int | None = None  # requests in flight at once

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"limit {f.name} must be a positive number, not {value!r}")

    def to_dict(self) -> dict[str, float | int]:
        return {k: v for k, v in asdict(self).items() if v is not None and (k, v) != ("burst", 1)}

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> Limits:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}")
        # names checked above, values by __post_init__; the mapping's value type cannot say which
        return cls(**data)  # type: ignore[arg-type]

    @property
    def empty(self) -> bool:
        return not self.to_dict()


@dataclass(frozen=True)
class Decision:
    """A rate check's answer: the limit, what remains, and when it is whole again."""

    allowed: bool
    limit: float
    remaining: float
    reset_seconds: float
    retry_after: float = 0.0


def gcra(tat: float, now: float, per_minute: int, burst: int) -> tuple[Decision, float]:
    """One GCRA step: the decision and the new theoretical arrival time."""
    interval = MINUTE / per_minute
    tolerance = interval * (burst - 1)
    tat = max(tat, now)
    allow_at = tat - tolerance
    if now < allow_at:
        remaining = 0
        return Decision(False, per_minute, remaining, tat - now, allow_at - now), tat
    new_tat = tat + interval
    remaining = max(0, math.floor((now + tolerance - new_tat) / interval) + 1)
    return Decision(True, per_minute, remaining, new_tat - now), new_tat


class Limiter(Protocol):
    """Counters shared by every request a limiter sees (one process, or every node)."""

    def rate(self, key: str, per_minute: int, burst: int) -> Decision:
        """A GCRA check that takes one request's place when allowed."""
        ...

    def used(self, key: str, window: int) -> float:
        """What was added to `key` in the current window of `window` seconds."""
        ...

    def add(self, key: str, window: int, amount: float) -> None: ...

    def acquire(self, key: str, limit: int, lease_seconds: float) -> str | None:
        """A lease among at most `limit` (None when all are taken); leases expire."""
        ...

    def release(self, key: str, lease: str) -> None: ...

    def close(self) -> None: ...


def window_reset(window: int, now: float) -> float:
    """Seconds until the current fixed window ends."""
    return window - (now % window)


class MemoryLimiter:
    """The limiter of one process: dictionaries under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._usage: dict[tuple[str, int], tuple[int, float]] = {}  # (key, window) -> (index, sum)
        self._leases: dict[str, dict[str, float]] = {}

    def rate(self, key: str, per_minute: int, burst: int) -> Decision:
        now = time.time()
        with self._lock:
            decision, tat = gcra(self._tat.get(key, 0.0), now, per_minute, burst)
            if decision.allowed:
                self._tat[key] = tat
        return decision

    def used(self, key: str, window: int) -> float:
        index = int(time.time() // window)
        with self._lock:
            stored, amount = self._usage.get((key, window), (index, 0.0))
        return amount if stored == index else 0.0

    def add(self, key: str, window: int, amount: float) -> None:
        index = int(time.time() // window)
        with self._lock:
            stored, total = self._usage.get((key, window), (index, 0.0))
            self._usage[(key, window)] = (index, (total if stored == index else 0.0) + amount)

    def acquire(self, key: str, limit: int, lease_seconds: float) -> str | None:
        now = time.time()
        with self._lock:
            leases = self._leases.setdefault(key, {})
            for lease, expires in list(leases.items()):
                if expires <= now:
                    del leases[lease]
            if len(leases) >= limit:
                return None
            lease = uuid.uuid4().hex
            leases[lease] = now + lease_seconds
            return lease

    def release(self, key: str, lease: str) -> None:
        with self._lock:
            self._leases.get(key, {}).pop(lease, None)

    def close(self) -> None:
        pass
