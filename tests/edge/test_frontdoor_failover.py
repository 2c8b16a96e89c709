"""The nearest PoP killed (SIGKILL) under load: its users move to the next PoP within
seconds and no acknowledged turn is lost (bench/frontdoor_failover.py's run, asserted)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = REPO / "bench" / "frontdoor_failover.py"
    spec = importlib.util.spec_from_file_location("frontdoor_failover", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_killing_the_nearest_pop_moves_its_users_and_loses_no_acknowledged_turn(
    bench: ModuleType, tmp_path: Path
) -> None:
    clients = 6
    setup = bench.start_setup(tmp_path, near_ms=2, far_ms=80)
    try:
        result = asyncio.run(bench.failover(setup, clients, before=1.5, after=3.0))
        stored = {
            user: httpx.get(f"{setup.far}/v1/sessions/{user}").json()["turns"]
            for user in {t.user for t in result.turns}
        }
    finally:
        setup.stop()
    before = [t for t in result.turns if t.status == 200 and t.pop == "near"]
    assert {t.user for t in before} == {f"user-{i}" for i in range(clients)}
    assert result.move_s <= 5.0
    assert result.lost == 0 and result.duplicated == 0
    # only turns in flight on the dead PoP fail (one a user at most), as 502: never resent
    failed = [t for t in result.turns if t.status != 200]
    assert len(failed) <= clients
    assert {t.status for t in failed} <= {502}
    answered_by_far = {
        s["message"] for turns in stored.values() for s in turns if s["pop"] == "far"
    }
    assert not answered_by_far & {t.message for t in failed}
    # each session went on at the far PoP, in the same shared store
    for user, turns in stored.items():
        assert [s["pop"] for s in turns][-1] == "far", user
        assert "near" in {s["pop"] for s in turns}, user
