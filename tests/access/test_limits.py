"""The limiter's counters, the same tests on the in-process limiter and on a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from milliwatt.access.keys import Principal
from milliwatt.access.limits import DAY, MINUTE, Limiter, Limits, MemoryLimiter, gcra
from milliwatt.access.quota import Quota, Refused


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    from milliwatt.access.redis_limiter import RedisLimiter

    redis = RedisLimiter(
        request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    )
    yield redis
    redis.close()


def test_gcra_spaces_requests_by_the_emission_interval() -> None:
    decision, tat = gcra(0.0, 100.0, per_minute=60, burst=1)
    assert decision.allowed and tat == 101.0
    refused, same = gcra(tat, 100.5, per_minute=60, burst=1)
    assert not refused.allowed and refused.retry_after == pytest.approx(0.5) and same == tat
    again, _ = gcra(tat, 101.0, per_minute=60, burst=1)
    assert again.allowed


def test_rate_allows_the_burst_then_refuses(limiter: Limiter) -> None:
    allowed = [limiter.rate("k", per_minute=60, burst=3).allowed for _ in range(5)]
    assert allowed == [True, True, True, False, False]
    refused = limiter.rate("k", per_minute=60, burst=3)
    assert 0 < refused.retry_after <= 1.0 and refused.remaining == 0
    assert limiter.rate("other", per_minute=60, burst=1).allowed  # keys do not share


def test_rate_recovers_after_the_interval(limiter: Limiter) -> None:
    assert limiter.rate("k", per_minute=600, burst=1).allowed  # one per 0.1 s
    assert not limiter.rate("k", per_minute=600, burst=1).allowed
    time.sleep(0.12)
    assert limiter.rate("k", per_minute=600, burst=1).allowed


def test_usage_adds_up_per_window(limiter: Limiter) -> None:
    assert limiter.used("u", MINUTE) == 0
    limiter.add("u", MINUTE, 40)
    limiter.add("u", MINUTE, 2.5)
    limiter.add("u", DAY, 7)
    assert limiter.used("u", MINUTE) == pytest.approx(42.5)
    assert limiter.used("u", DAY) == pytest.approx(7)


def test_leases_bound_concurrency_and_expire(limiter: Limiter) -> None:
    first = limiter.acquire("c", 2, 60)
    second = limiter.acquire("c", 2, 60)
    assert first and second and limiter.acquire("c", 2, 60) is None
    limiter.release("c", first)
    assert limiter.acquire("c", 2, 60) is not None
    short = limiter.acquire("d", 1, 0.05)
    assert short and limiter.acquire("d", 1, 0.05) is None
    time.sleep(0.08)
    assert limiter.acquire("d", 1, 60) is not None  # a crashed holder's lease ran out


def _principal(limits: Limits, tenant_limits: Limits | None = None) -> Principal:
    return Principal("acme", "abcdefghij", limits=limits, tenant_limits=tenant_limits or Limits())


def test_quota_refuses_with_openai_headers(limiter: Limiter) -> None:
    events: list[tuple[str, object]] = []
    quota = Quota(limiter, lambda event, fields: events.append((event, fields)))
    principal = _principal(Limits(rpm=2, burst=2))
    first = quota.admit(principal)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    quota.admit(principal)
    with pytest.raises(Refused) as caught:
        quota.admit(principal)
    assert caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.headers["Retry-After"]) >= 1
    assert caught.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert events and events[-1][0] == "ratelimit.refused"


def test_budgets_are_checked_before_work_and_settled_after(limiter: Limiter) -> None:
    quota = Quota(limiter)
    principal = _principal(Limits(tokens_per_day=100), Limits(joules_per_day=5.0))
    quota.admit(principal)
    quota.settle(principal, tokens=60, joules=1.0)
    quota.admit(principal)
    quota.settle(principal, tokens=60, joules=1.0)  # 120 of 100: the next is refused
    with pytest.raises(Refused, match="budget of the key spent: 120 of 100 tokens per day") as c:
        quota.admit(principal)
    assert c.value.code == "insufficient_quota" and c.value.event == "budget.refused"
    other = Principal("acme", "klmnopqrst", tenant_limits=Limits(joules_per_day=5.0))
    quota.settle(other, tokens=0, joules=3.5)  # the tenant's joules: 2 + 3.5 of 5
    with pytest.raises(Refused, match="budget of the tenant spent"):
        quota.admit(other)


def test_concurrency_lease_is_given_back(limiter: Limiter) -> None:
    quota = Quota(limiter)
    principal = _principal(Limits(concurrent=1))
    held = quota.admit(principal)
    with pytest.raises(Refused, match="concurrent"):
        quota.admit(principal)
    quota.release(held)
    quota.release(quota.admit(principal))


def test_a_refused_rate_gives_its_lease_back(limiter: Limiter) -> None:
    quota = Quota(limiter)
    principal = _principal(Limits(rpm=1, concurrent=1))
    quota.release(quota.admit(principal))
    with pytest.raises(Refused, match="requests per minute"):
        quota.admit(principal)
    assert limiter.acquire("key:abcdefghij", 1, 60) is not None


def test_an_unreachable_redis_is_an_error_not_a_free_pass() -> None:
    from tests.conftest import free_port

    from milliwatt.access.limits import LimiterUnavailable
    from milliwatt.access.redis_limiter import RedisLimiter

    dead = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0")
    quota = Quota(dead)
    with pytest.raises(LimiterUnavailable, match="the Redis limiter failed"):
        quota.admit(_principal(Limits(rpm=10)))
    with pytest.raises(LimiterUnavailable):
        dead.add("k", MINUTE, 1)
