"""What the front door knows of each replica and PoP, kept current by health probes.

Every `probe_interval_seconds` each replica gets GET /healthz: its round-trip time feeds a
moving average (EWMA), and failures or timeouts in a row take it out of rotation until good
probes in a row bring it back. Because the front door sits next to its users (as an anycast
address puts it), its measured RTT to a PoP is its users' RTT to that PoP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from milliwatt.edge.pops import FrontDoorConfig, FrontDoorSettings

log = logging.getLogger("milliwatt.frontdoor")


@dataclass
class Replica:
    url: str
    pop: str
    healthy: bool = False
    probed: bool = False  # the first probe decides alone: no waiting at start
    rtt_ms: float | None = None  # EWMA of the probes' round trips
    failures: int = 0  # consecutive
    successes: int = 0  # consecutive
    in_flight: int = 0  # requests sent and not yet fully relayed
    models: frozenset[str] | None = None  # None: not learned yet
    models_at: float = float("-inf")
    saturated_until: float = 0.0  # time.monotonic() before which it is passed over
    last_error: str = ""
    # requests in flight wait on these: resolved when the replica is taken out
    down_waiters: set[asyncio.Future[None]] = field(default_factory=set)

    def record_success(self, rtt_ms: float, settings: FrontDoorSettings) -> None:
        alpha = settings.rtt_smoothing
        self.rtt_ms = rtt_ms if self.rtt_ms is None else alpha * rtt_ms + (1 - alpha) * self.rtt_ms
        self.failures = 0
        self.successes += 1
        if not self.healthy and (not self.probed or self.successes >= settings.healthy_after):
            self.healthy = True
            log.warning("%s (%s) in: rtt %.1f ms", self.url, self.pop, self.rtt_ms)
        self.probed = True

    def record_failure(self, reason: str, settings: FrontDoorSettings) -> None:
        self.last_error = reason
        self.successes = 0
        self.failures += 1
        if not self.probed or self.failures >= settings.unhealthy_after:
            self._take_out()
        self.probed = True

    def mark_down(self, reason: str) -> None:
        """A refused connection is proof enough: out now, back after good probes."""
        self.last_error = reason
        self.successes = 0
        self._take_out()

    def _take_out(self) -> None:
        if self.healthy or not self.probed:
            log.warning("%s (%s) out: %s", self.url, self.pop, self.last_error)
        self.healthy = False
        for waiter in self.down_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.down_waiters.clear()

    def when_down(self) -> asyncio.Future[None]:
        """Resolved when the replica is taken out (its in-flight requests are cut then)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.down_waiters.add(waiter)
        return waiter

    def saturate(self, seconds: float) -> None:
        self.saturated_until = max(self.saturated_until, time.monotonic() + seconds)

    def available(self, now: float) -> bool:
        return self.healthy and now >= self.saturated_until

    def serves(self, model: str | None) -> bool:
        return model is None or self.models is None or model in self.models

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "in_flight": self.in_flight,
            "models": None if self.models is None else sorted(self.models),
            "saturated": time.monotonic() < self.saturated_until,
            "last_error": self.last_error,
        }


@dataclass
class Pop:
    name: str
    replicas: list[Replica] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return any(r.healthy for r in self.replicas)

    @property
    def rtt_ms(self) -> float | None:
        """The PoP's distance: its nearest healthy replica's smoothed RTT."""
        times = [r.rtt_ms for r in self.replicas if r.healthy and r.rtt_ms is not None]
        return min(times) if times else None

    def state(self) -> dict[str, Any]:
        rtt = self.rtt_ms
        return {
            "name": self.name,
            "healthy": self.healthy,
            "rtt_ms": None if rtt is None else round(rtt, 3),
            "replicas": [r.state() for r in self.replicas],
        }


def build_pops(config: FrontDoorConfig) -> list[Pop]:
    return [
        Pop(name, [Replica(url, name) for url in pop.replicas]) for name, pop in config.pops.items()
    ]


class Prober:
    """Probes every replica each interval, all at once, on its own connection pool (so that
    a busy proxy pool never delays a probe into a false timeout)."""

    def __init__(self, pops: list[Pop], settings: FrontDoorSettings) -> None:
        self.pops = pops
        self.settings = settings
        self.client = httpx.AsyncClient(timeout=settings.probe_timeout_seconds)

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.probe_all()
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.settings.probe_interval_seconds - elapsed))

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(r) for pop in self.pops for r in pop.replicas))

    async def probe(self, replica: Replica) -> None:
        started = time.perf_counter()
        try:
            response = await self.client.get(f"{replica.url}/healthz")
        except httpx.HTTPError as exc:
            replica.record_failure(f"{type(exc).__name__}: {exc}", self.settings)
            return
        rtt_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            replica.record_failure(f"/healthz answered {response.status_code}", self.settings)
            return
        replica.record_success(rtt_ms, self.settings)
        if time.monotonic() - replica.models_at >= self.settings.models_refresh_seconds:
            await self.learn_models(replica, response)

    async def learn_models(self, replica: Replica, health: httpx.Response) -> None:
        """The models (agents) the replica serves, from its /v1/models; a PoP that requires
        API keys and none configured: from the agents its /healthz lists."""
        key = self.settings.api_key()
        headers = {"authorization": f"Bearer {key}"} if key else {}
        try:
            response = await self.client.get(f"{replica.url}/v1/models", headers=headers)
            if response.status_code == 200:
                replica.models = frozenset(str(m["id"]) for m in response.json()["data"])
            elif response.status_code in {401, 403}:
                agents = health.json().get("agents")
                if isinstance(agents, list):
                    replica.models = frozenset(str(a) for a in agents)
            else:
                return  # ask again next probe
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return  # not this time; the next probe asks again
        replica.models_at = time.monotonic()

    async def aclose(self) -> None:
        await self.client.aclose()
