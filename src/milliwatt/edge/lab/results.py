"""What a lab run found, per scenario and loop length, and how it is printed."""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from milliwatt.edge.lab.agent_loop import Measured
from milliwatt.edge.lab.scenarios import Scenario


@dataclass(frozen=True)
class LoopResult:
    """An N-step loop at the edge against the same at the centre (medians over repeats)."""

    steps: int
    calls: int  # HTTP round trips per loop
    edge_ms: float
    central_ms: float
    saving_ms: float  # median of central - edge, each pair measured back to back
    net_saving_ms: float  # the same with each PoP's own time (its agent's, as it reports) out
    goal_ms: float  # N x (central RTT - edge RTT): the saving the edge must reach
    path_ms: float  # calls x (central RTT - edge RTT): what the paths alone account for

    @property
    def met(self) -> bool:
        return self.saving_ms >= self.goal_ms


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    edge_rtt_ms: float  # as configured, from the fiber model
    central_rtt_ms: float
    ping_ms: dict[str, float]  # as measured: min GET /healthz through the lab
    loops: list[LoopResult]

    @property
    def met(self) -> bool:
        return all(loop.met for loop in self.loops)


def summarise(scenario: Scenario, measured: Measured) -> ScenarioResult:
    edge_rtt, central_rtt = scenario.rtt_ms(scenario.edge), scenario.rtt_ms(scenario.central)
    loops = []
    for steps in sorted({loop.steps for loop in measured.loops}):
        times: dict[tuple[str, int], float] = {}
        nets: dict[tuple[str, int], float] = {}
        for loop in measured.loops:
            if loop.steps == steps:
                times[loop.target, loop.repeat] = loop.wall_ms
                nets[loop.target, loop.repeat] = loop.wall_ms - loop.server_ms
        repeats = sorted({repeat for _, repeat in times})
        calls = next(loop.calls for loop in measured.loops if loop.steps == steps)
        loops.append(
            LoopResult(
                steps=steps,
                calls=calls,
                edge_ms=statistics.median(times["edge", r] for r in repeats),
                central_ms=statistics.median(times["central", r] for r in repeats),
                saving_ms=statistics.median(
                    times["central", r] - times["edge", r] for r in repeats
                ),
                net_saving_ms=statistics.median(
                    nets["central", r] - nets["edge", r] for r in repeats
                ),
                goal_ms=steps * (central_rtt - edge_rtt),
                path_ms=calls * (central_rtt - edge_rtt),
            )
        )
    return ScenarioResult(scenario, edge_rtt, central_rtt, dict(measured.ping_ms), loops)


def table(results: Sequence[ScenarioResult]) -> Iterator[str]:
    for result in results:
        s = result.scenario
        yield ""
        yield s.describe()
        ping = ", ".join(f"{role} {ms:.1f} ms" for role, ms in result.ping_ms.items())
        yield f"  measured min round trip (GET /healthz): {ping}"
        yield (
            f"  {'N':>3} {'calls':>5} {'edge ms':>9} {'central ms':>10} {'saving ms':>9} "
            f"{'goal ms':>8} {'calls x dRTT':>12} {'net saving':>10}  met"
        )
        for loop in result.loops:
            yield (
                f"  {loop.steps:>3} {loop.calls:>5} {loop.edge_ms:>9.1f} {loop.central_ms:>10.1f} "
                f"{loop.saving_ms:>9.1f} {loop.goal_ms:>8.1f} {loop.path_ms:>12.1f} "
                f"{loop.net_saving_ms:>10.1f}  "
                f"{'yes' if loop.met else 'NO'}"
            )


def headline(results: Sequence[ScenarioResult]) -> str:
    figures: dict[str, str] = {}
    for result in results:
        for loop in result.loops:
            prefix = f"{result.scenario.name}_n{loop.steps}"
            figures[f"{prefix}_saving_ms"] = f"{loop.saving_ms:.1f}"
            figures[f"{prefix}_goal_ms"] = f"{loop.goal_ms:.1f}"
            figures[f"{prefix}_net_saving_ms"] = f"{loop.net_saving_ms:.1f}"
    figures["goal_met"] = str(all(result.met for result in results)).lower()
    return " ".join(f"{key}={value}" for key, value in figures.items())


def as_json(results: Sequence[ScenarioResult]) -> list[dict[str, Any]]:
    return [
        {
            "scenario": result.scenario.name,
            "user": result.scenario.user.name,
            "edge": result.scenario.edge.name,
            "central": result.scenario.central.name,
            "edge_rtt_ms": round(result.edge_rtt_ms, 2),
            "central_rtt_ms": round(result.central_rtt_ms, 2),
            "ping_ms": {role: round(ms, 2) for role, ms in result.ping_ms.items()},
            "loops": [
                {
                    "steps": loop.steps,
                    "calls": loop.calls,
                    "edge_ms": round(loop.edge_ms, 1),
                    "central_ms": round(loop.central_ms, 1),
                    "saving_ms": round(loop.saving_ms, 1),
                    "net_saving_ms": round(loop.net_saving_ms, 1),
                    "goal_ms": round(loop.goal_ms, 1),
                    "path_ms": round(loop.path_ms, 1),
                    "met": loop.met,
                }
                for loop in result.loops
            ],
            "met": result.met,
        }
        for result in results
    ]
