"""A replica's state from its probes: the smoothed RTT, out after M failures in a row, back
after N successes in a row; and the ranking and replica choice built on it."""

from __future__ import annotations

import random

import pytest

from milliwatt.edge.health import Pop, Replica
from milliwatt.edge.pops import FrontDoorSettings
from milliwatt.edge.routing import next_replica, ranked

SETTINGS = FrontDoorSettings(unhealthy_after=3, healthy_after=2, rtt_smoothing=0.5)


def test_the_rtt_is_a_moving_average_of_the_probes() -> None:
    replica = Replica("http://a", "fra")
    for rtt in (10.0, 20.0, 20.0):
        replica.record_success(rtt, SETTINGS)
    assert replica.rtt_ms == pytest.approx(17.5)  # 10 -> 15 -> 17.5


def test_out_after_m_failures_in_a_row_and_back_after_n_successes() -> None:
    replica = Replica("http://a", "fra")
    replica.record_success(5.0, SETTINGS)
    assert replica.healthy  # the first probe decides alone
    for _ in range(2):
        replica.record_failure("timeout", SETTINGS)
    replica.record_success(5.0, SETTINGS)  # a success resets the count
    for _ in range(2):
        replica.record_failure("timeout", SETTINGS)
    assert replica.healthy
    replica.record_failure("timeout", SETTINGS)
    assert not replica.healthy
    replica.record_success(5.0, SETTINGS)
    assert not replica.healthy
    replica.record_success(5.0, SETTINGS)
    assert replica.healthy


def test_a_refused_connection_takes_a_replica_out_at_once() -> None:
    replica = Replica("http://a", "fra")
    replica.record_success(5.0, SETTINGS)
    replica.mark_down("ConnectError")
    assert not replica.healthy
    replica.record_success(5.0, SETTINGS)
    assert not replica.healthy  # back only after healthy_after good probes
    replica.record_success(5.0, SETTINGS)
    assert replica.healthy


def _pop(name: str, *rtts: float) -> Pop:
    pop = Pop(name, [Replica(f"http://{name}{i}", name) for i in range(len(rtts))])
    for replica, rtt in zip(pop.replicas, rtts, strict=True):
        replica.record_success(rtt, SETTINGS)
    return pop


def test_pops_rank_by_their_nearest_healthy_replica() -> None:
    fra, sin = _pop("fra", 30.0, 8.0), _pop("sin", 12.0)
    assert [p.name for p in ranked([fra, sin])] == ["fra", "sin"]
    fra.replicas[1].mark_down("gone")
    assert [p.name for p in ranked([fra, sin])] == ["sin", "fra"]
    assert [p.name for p in ranked([fra, sin], {"fra": 1.0})] == ["fra", "sin"]


def test_the_replica_with_fewer_requests_in_flight_wins() -> None:
    fra = _pop("fra", 5.0, 5.0)
    fra.replicas[0].in_flight = 3
    rng = random.Random(0)

    def pick(tried: set[str]) -> str | None:
        chosen = next_replica([fra], None, tried, 0.0, rng=rng)
        return None if chosen is None else chosen.url

    assert {pick(set()) for _ in range(20)} == {"http://fra1"}
    assert pick({"http://fra1"}) == "http://fra0"  # the next try goes to another
    assert pick({"http://fra0", "http://fra1"}) is None
