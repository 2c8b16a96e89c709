"""The lab with real PoPs: `milliwatt serve` and the bundled model in both namespaces."""

from __future__ import annotations

import pytest

from milliwatt.edge.lab import namespaces
from milliwatt.edge.lab.runner import run_lab
from milliwatt.edge.lab.scenarios import SCENARIOS

REASON = namespaces.unavailable_reason()


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(REASON is not None, reason=f"no network namespaces: {REASON}")
def test_served_from_madrid_a_lisbon_users_loop_beats_ashburn_by_the_goal() -> None:
    # one token per model call: the model's time, and its noise, stay small beside the paths
    [result] = run_lab([SCENARIOS["lisbon"]], [1, 2], repeats=5, max_tokens=1)
    for loop in result.loops:
        assert loop.calls == 2 * loop.steps
        assert loop.edge_ms >= loop.calls * result.edge_rtt_ms
        assert loop.saving_ms >= loop.goal_ms, loop  # N x (86.5 - 7.6) ms at least
        # with the agents' own time out, the paths make the difference: calls x dRTT, give or
        # take what a busy machine adds to the servers' HTTP handling around the agent
        assert abs(loop.net_saving_ms - loop.path_ms) <= 10 + 0.1 * loop.path_ms, loop
