"""Where the front door sends a request: the nearest PoP that can serve it, and within that
PoP the least loaded replica.

Nearest is by measured RTT (a client may state its own RTTs in the x-milliwatt-rtt header:
a PoP it names is ranked by its figure). A PoP "can serve" a request when one of its
replicas is healthy, not saturated, lists the requested model and has not been tried for
this request already. Within a PoP, two replicas drawn at random, the one with fewer requests
in flight wins (power of two choices): as good as least-outstanding when one front door
sends all the load, and it does not herd every new request onto one replica when several
front doors share PoPs and each sees only its own in-flight counts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence

from milliwatt.edge.health import Pop, Replica
from milliwatt.errors import InvalidRequestError

RTT_HINT_HEADER = "x-milliwatt-rtt"


def parse_rtt_hint(value: str | None, known: Collection[str]) -> dict[str, float]:
    """`fra=12.5, sin=180`: the client's own RTTs in ms to the PoPs it names."""
    if not value:
        return {}
    hint: dict[str, float] = {}
    for item in value.split(","):
        name, sep, number = item.strip().partition("=")
        try:
            rtt = float(number)
        except ValueError:
            rtt = math.nan
        if not sep or not math.isfinite(rtt) or rtt < 0:
            raise InvalidRequestError(
                f"{RTT_HINT_HEADER}: {item.strip()!r} is not name=milliseconds"
            )
        if name not in known:
            raise InvalidRequestError(f"{RTT_HINT_HEADER}: no PoP is named {name!r}")
        hint[name] = rtt
    return hint


def ranked(pops: Sequence[Pop], hint: dict[str, float] | None = None) -> list[Pop]:
    """The healthy PoPs, nearest first (a PoP without a measurement yet goes last)."""

    def distance(pop: Pop) -> float:
        if hint and pop.name in hint:
            return hint[pop.name]
        rtt = pop.rtt_ms
        return math.inf if rtt is None else rtt

    return sorted((p for p in pops if p.healthy), key=distance)


def pick_replica(candidates: Sequence[Replica], rng: random.Random | None = None) -> Replica | None:
    """Power of two choices on in-flight counts."""
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    first, second = (rng or random).sample(list(candidates), 2)
    return first if first.in_flight <= second.in_flight else second


def next_replica(
    pops: Sequence[Pop],
    model: str | None,
    tried: Collection[str],
    now: float,
    hint: dict[str, float] | None = None,
    rng: random.Random | None = None,
) -> Replica | None:
    """The replica to try next for `model`, or None when no PoP is left that can serve it.
    When no healthy replica anywhere lists the model, the nearest one that is up gets the
    request anyway, so that the client hears the PoP's own answer (404 model_not_found)."""
    usable = [
        [r for r in pop.replicas if r.available(now) and r.url not in tried]
        for pop in ranked(pops, hint)
    ]
    for replicas in usable:
        chosen = pick_replica([r for r in replicas if r.serves(model)], rng)
        if chosen is not None:
            return chosen
    listed = any(r.serves(model) for pop in pops for r in pop.replicas if r.healthy)
    if not listed and not tried:
        for replicas in usable:
            chosen = pick_replica(replicas, rng)
            if chosen is not None:
                return chosen
    return None
