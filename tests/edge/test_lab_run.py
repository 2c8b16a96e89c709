"""A whole lab run with a scripted PoP server: the user's loop through the edge beats the
same loop through the central region by the round trips it saves; and what a run reports."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

from milliwatt.edge.geo import modelled_rtt_ms
from milliwatt.edge.lab import namespaces
from milliwatt.edge.lab.agent_loop import LoopTime, Measured
from milliwatt.edge.lab.cli import parse_steps
from milliwatt.edge.lab.namespaces import LabUnavailableError, existing
from milliwatt.edge.lab.results import as_json, headline, summarise
from milliwatt.edge.lab.runner import PopSpec, child_env, run_lab
from milliwatt.edge.lab.scenarios import ASHBURN, SCENARIOS, scenario
from milliwatt.errors import InvalidRequestError

REASON = namespaces.unavailable_reason()
needs_netns = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces: {REASON}")
SCRIPTED = Path(__file__).with_name("lab_pop.py")
MODEL_MS = 5  # the scripted server's time per model call


def scripted(spec: PopSpec) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, str(SCRIPTED), spec.host, str(spec.port), str(MODEL_MS)], child_env()


@needs_netns
def test_the_edge_saves_a_round_trip_difference_per_call() -> None:
    lisbon = SCENARIOS["lisbon"]
    [result] = run_lab([lisbon], [1, 3], repeats=3, launcher=scripted)
    edge_rtt, central_rtt = lisbon.rtt_ms(lisbon.edge), lisbon.rtt_ms(lisbon.central)
    assert 7 < edge_rtt < 8 and 86 < central_rtt < 87  # Lisbon-Madrid, Lisbon-Ashburn
    # a ping through the lab costs the path's modelled round trip, plus the servers' time
    assert edge_rtt <= result.ping_ms["edge"] < edge_rtt + 15
    assert central_rtt <= result.ping_ms["central"] < central_rtt + 15
    assert [loop.steps for loop in result.loops] == [1, 3]
    for loop in result.loops:
        assert loop.calls == 2 * loop.steps  # a model call and a tool call per step
        assert loop.edge_ms >= loop.calls * edge_rtt + loop.steps * MODEL_MS
        assert loop.central_ms >= loop.calls * central_rtt + loop.steps * MODEL_MS
        # the same servers behind both paths: the paths make the whole difference
        assert loop.path_ms * 0.95 <= loop.saving_ms <= loop.path_ms + 10 * loop.calls
        assert loop.met
    assert not [name for name in existing() if f"-{os.getpid()}-" in name]


@needs_netns
def test_a_pop_that_dies_ends_the_run_with_its_words() -> None:
    def broken(spec: PopSpec) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-c", "raise SystemExit('no model here')"], child_env()

    with pytest.raises(LabUnavailableError, match=r"PoP exited .*no model here"):
        run_lab([SCENARIOS["lisbon"]], [1], repeats=1, launcher=broken)


@needs_netns
def test_a_step_answered_by_the_wrong_route_fails_the_run() -> None:
    def misrouting(spec: PopSpec) -> tuple[list[str], dict[str, str]]:
        argv, env = scripted(spec)
        return [*argv, "misroute"], env

    with pytest.raises(LabUnavailableError, match="went to route 'model', not 'tool'"):
        run_lab([SCENARIOS["lisbon"]], [1], repeats=1, launcher=misrouting)


def test_loop_lengths_are_positive_integers() -> None:
    assert parse_steps("1,3,10,3") == [1, 3, 10]
    for text in ("1,x", "0,2", ""):
        with pytest.raises(InvalidRequestError, match="positive integers, comma-separated"):
            parse_steps(text)


def test_without_root_the_run_says_it_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(namespaces.os, "geteuid", lambda: 1000)
    with pytest.raises(LabUnavailableError, match="needs root"):
        run_lab([SCENARIOS["lisbon"]], [1], launcher=scripted)


def test_results_pair_each_repeat_and_compare_with_the_goal() -> None:
    lisbon = SCENARIOS["lisbon"]
    delta = lisbon.rtt_ms(lisbon.central) - lisbon.rtt_ms(lisbon.edge)
    walls = {("edge", 0): 100.0, ("central", 0): 300.0, ("edge", 1): 200.0, ("central", 1): 250.0,
             ("edge", 2): 150.0, ("central", 2): 400.0}  # fmt: skip
    # the PoPs' own time varies; what is left of each loop is 10 ms at the edge, 160 central
    loops = [
        LoopTime(role, 2, repeat, wall, 4, wall - (10.0 if role == "edge" else 160.0))
        for (role, repeat), wall in walls.items()
    ]
    [loop] = summarise(lisbon, Measured(loops, {"edge": 8.0, "central": 87.0})).loops
    assert (loop.edge_ms, loop.central_ms) == (150.0, 300.0)
    assert loop.saving_ms == 200.0  # median of 200, 50, 250: paired, not median - median
    assert loop.goal_ms == pytest.approx(2 * delta) and loop.path_ms == pytest.approx(4 * delta)
    assert loop.net_saving_ms == 150.0  # the PoPs' own time taken out of each loop
    assert loop.met  # 200 ms against 2 x 78.9 ms
    [document] = as_json([summarise(lisbon, Measured(loops, {"edge": 8.0}))])
    assert document["loops"][0]["saving_ms"] == 200.0 and document["met"] is True
    assert (document["user"], document["edge"], document["central"]) == (
        "Lisbon",
        "Madrid",
        "Ashburn",
    )
    assert headline([summarise(lisbon, Measured(loops, {}))]) == (
        f"lisbon_n2_saving_ms=200.0 lisbon_n2_goal_ms={2 * delta:.1f} "
        "lisbon_n2_net_saving_ms=150.0 goal_met=true"
    )


def test_scenarios_use_the_fiber_model_and_unknown_ones_are_named() -> None:
    jakarta = scenario("jakarta")
    assert jakarta.rtt_ms(ASHBURN) == modelled_rtt_ms(jakarta.user, ASHBURN)
    assert 240 < jakarta.rtt_ms(jakarta.central) < 250 and 13 < jakarta.rtt_ms(jakarta.edge) < 14
    with pytest.raises(InvalidRequestError, match="unknown scenario 'mars'; known: lisbon"):
        scenario("mars")


def test_scenario_cities_are_where_the_cities_corpus_puts_them(corpora: Path) -> None:
    with (corpora / "cities" / "cities.csv").open(newline="", encoding="utf-8") as handle:
        rows = {row["city"]: row for row in csv.DictReader(handle)}
    places = {p.name: p for s in SCENARIOS.values() for p in (s.user, s.edge, s.central)}
    for name, place in places.items():
        if name == "Ashburn":  # under 100,000 people: not in the corpus
            continue
        assert (place.lat, place.lon) == (float(rows[name]["lat"]), float(rows[name]["lon"]))
