"""Admission of one request against its key's and its tenant's limits, before work starts.

`admit` checks the budgets (tokens per minute and per day, joules per day: refused once
spent), takes a concurrency lease, then a place in the requests-per-minute GCRA; `settle`
adds what the answer cost; `release` gives the lease back. A refusal carries what OpenAI's
API sends with a 429: `Retry-After` and the `x-ratelimit-*` headers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from milliwatt.access.keys import Principal
from milliwatt.access.limits import DAY, MINUTE, Limiter, Limits, window_reset
from milliwatt.errors import RateLimitedError

LEASE_SECONDS = 3600.0  # a request (a stream included) ends long before; a crash frees it then

Recorder = Callable[[str, Mapping[str, object]], None]


def duration(seconds: float) -> str:
    """OpenAI's reset format: "1s", "6m0s", "0.25s"."""
    if seconds < 60:
        return f"{max(seconds, 0):.3g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{rest}s"


class Refused(RateLimitedError):
    """A request over a limit: 429 with these headers."""

    def __init__(self, message: str, code: str, event: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.code = code
        self.event = event
        self.headers = headers


@dataclass
class Admission:
    principal: Principal
    headers: dict[str, str] = field(default_factory=dict)
    leases: list[tuple[str, str]] = field(default_factory=list)


def _scopes(principal: Principal) -> list[tuple[str, str, Limits]]:
    scopes = [("key", f"key:{principal.key_id}", principal.limits)]
    return [*scopes, ("tenant", f"tenant:{principal.tenant}", principal.tenant_limits)]


class Quota:
    def __init__(self, limiter: Limiter, record: Recorder | None = None) -> None:
        self.limiter = limiter
        self.record = record

    def admit(self, principal: Principal) -> Admission:
        admission = Admission(principal)
        if principal.key_id is None:
            return admission  # the local machine without keys: nothing to count against
        try:
            for scope, key, limits in _scopes(principal):
                self._check_budgets(scope, key, limits, admission)
            for scope, key, limits in _scopes(principal):
                if limits.concurrent is not None:
                    lease = self.limiter.acquire(key, limits.concurrent, LEASE_SECONDS)
                    if lease is None:
                        raise Refused(
                            f"the {scope}'s {limits.concurrent} concurrent requests are all "
                            "in flight; retry when one ends",
                            "rate_limit_exceeded", "ratelimit.refused", {"Retry-After": "1"},
                        )  # fmt: skip
                    admission.leases.append((key, lease))
            for scope, key, limits in _scopes(principal):
                if limits.rpm is not None:
                    self._check_rate(scope, key, limits, admission)
        except Refused as refused:
            self.release(admission)
            if self.record is not None:
                fields = {"tenant": principal.tenant, "key_id": principal.key_id}
                self.record(refused.event, fields | {"reason": str(refused)})
            raise
        return admission

    def _check_rate(self, scope: str, key: str, limits: Limits, admission: Admission) -> None:
        assert limits.rpm is not None
        decision = self.limiter.rate(key, limits.rpm, limits.burst)
        headers = {
            "x-ratelimit-limit-requests": str(limits.rpm),
            "x-ratelimit-remaining-requests": str(int(decision.remaining)),
            "x-ratelimit-reset-requests": duration(decision.reset_seconds),
        }
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after))
            raise Refused(
                f"rate limit of the {scope}: {limits.rpm} requests per minute; "
                f"retry in {decision.retry_after:.2f} s",
                "rate_limit_exceeded", "ratelimit.refused",
                headers | {"Retry-After": str(retry)},
            )  # fmt: skip
        admission.headers.update(headers)

    def _check_budgets(self, scope: str, key: str, limits: Limits, admission: Admission) -> None:
        budgets = [
            ("tokens per minute", limits.tpm, "tokens", MINUTE, "rate_limit_exceeded"),
            ("tokens per day", limits.tokens_per_day, "tokens", DAY, "insufficient_quota"),
            ("estimated joules per day", limits.joules_per_day, "joules", DAY,
             "insufficient_quota"),
        ]  # fmt: skip
        now = time.time()
        for name, limit, counter, window, code in budgets:
            if limit is None:
                continue
            used = self.limiter.used(f"{key}:{counter}", window)
            reset = window_reset(window, now)
            if counter == "tokens" and window == MINUTE:
                admission.headers.update({
                    "x-ratelimit-limit-tokens": str(limit),
                    "x-ratelimit-remaining-tokens": str(max(0, int(limit - used))),
                    "x-ratelimit-reset-tokens": duration(reset),
                })  # fmt: skip
            if used >= limit:
                raise Refused(
                    f"budget of the {scope} spent: {used:.4g} of {limit:g} {name}; "
                    f"it renews in {duration(reset)}",
                    code, "budget.refused",
                    admission.headers | {"Retry-After": str(max(1, math.ceil(reset)))},
                )  # fmt: skip

    def settle(self, principal: Principal, tokens: int, joules: float) -> None:
        """Count what an answered request cost against its key's and tenant's budgets."""
        if principal.key_id is None:
            return
        for _, key, limits in _scopes(principal):
            if tokens and (limits.tpm is not None or limits.tokens_per_day is not None):
                if limits.tpm is not None:
                    self.limiter.add(f"{key}:tokens", MINUTE, tokens)
                if limits.tokens_per_day is not None:
                    self.limiter.add(f"{key}:tokens", DAY, tokens)
            if joules and limits.joules_per_day is not None:
                self.limiter.add(f"{key}:joules", DAY, joules)

    def release(self, admission: Admission) -> None:
        for key, lease in admission.leases:
            self.limiter.release(key, lease)
        admission.leases.clear()
