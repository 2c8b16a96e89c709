"""The limiter in Redis, so that several `milliwatt serve` nodes share one set of counters.

Each check is one Lua script (atomic on the server) timed by Redis' own clock, so nodes whose
clocks disagree still count the same minute. Keys carry a prefix (`[access] redis_prefix`) and
expire when idle.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from milliwatt.access.limits import Decision, LimiterUnavailable

# GCRA: KEYS[1] holds the theoretical arrival time (ms); ARGV: interval ms, tolerance ms
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
local remaining = math.floor((now + tolerance - new_tat) / interval) + 1
if remaining < 0 then remaining = 0 end
return {1, remaining, new_tat - now, 0}
"""

# fixed windows: KEYS[1] prefix; ARGV: window seconds, amount (or "" to read)
_USAGE = """
local t = redis.call('TIME')
local window = tonumber(ARGV[1])
local index = math.floor(tonumber(t[1]) / window)
local key = KEYS[1] .. ':' .. window .. ':' .. index
if ARGV[2] == '' then
  return redis.call('GET', key) or '0'
end
local total = redis.call('INCRBYFLOAT', key, ARGV[2])
redis.call('EXPIRE', key, window + 60)
return total
"""

# leases: KEYS[1] a sorted set of lease -> expiry (ms); ARGV: limit, lease ms, lease id
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 1
"""


class RedisLimiter:
    def __init__(self, url: str, prefix: str = "milliwatt:") -> None:
        import redis

        self.prefix = prefix
        # a node that cannot reach Redis answers 503 quickly rather than hang its requests
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._gcra = self._redis.register_script(_GCRA)
        self._usage = self._redis.register_script(_USAGE)
        self._acquire = self._redis.register_script(_ACQUIRE)

    def ping(self) -> None:
        self._redis.ping()

    @contextmanager
    def _reached(self) -> Iterator[None]:
        import redis

        try:
            yield
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"the Redis limiter failed: {exc}") from None

    def _call(self, script: Callable[..., Any], key: str, args: list[Any]) -> Any:
        with self._reached():
            return script(keys=[key], args=args)

    def rate(self, key: str, per_minute: int, burst: int) -> Decision:
        interval = 60_000 / per_minute
        allowed, remaining, reset_ms, retry_ms = self._call(
            self._gcra, f"{self.prefix}rpm:{key}", [interval, interval * (burst - 1)]
        )
        return Decision(
            bool(allowed), per_minute, int(remaining), float(reset_ms) / 1000,
            float(retry_ms) / 1000,
        )  # fmt: skip

    def used(self, key: str, window: int) -> float:
        return float(self._call(self._usage, f"{self.prefix}use:{key}", [window, ""]))

    def add(self, key: str, window: int, amount: float) -> None:
        self._call(self._usage, f"{self.prefix}use:{key}", [window, repr(float(amount))])

    def acquire(self, key: str, limit: int, lease_seconds: float) -> str | None:
        lease = uuid.uuid4().hex
        ms = int(lease_seconds * 1000)
        taken = self._call(self._acquire, f"{self.prefix}conc:{key}", [limit, ms, lease])
        return lease if taken else None

    def release(self, key: str, lease: str) -> None:
        with self._reached():
            self._redis.zrem(f"{self.prefix}conc:{key}", lease)

    def close(self) -> None:
        self._redis.close()
