"""The line in front of a model's generation slots: bounded, timed, fair between users."""

from __future__ import annotations

import threading
import time

import pytest

from milliwatt.models.admission import FairAdmission
from milliwatt.models.base import GenerationCancelled, ModelBusyError


def _wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_callers_beyond_capacity_wait_and_get_in_when_a_slot_frees() -> None:
    line = FairAdmission(capacity=2, max_waiting=4)
    line.acquire("a", timeout=1)
    line.acquire("b", timeout=1)
    entered = threading.Event()

    def third() -> None:
        line.acquire("c", timeout=5)
        entered.set()

    threading.Thread(target=third).start()
    _wait_for(lambda: line.waiting == 1)
    assert not entered.is_set()
    line.release()
    assert entered.wait(2)
    assert (line.running, line.waiting) == (2, 0)


def test_users_are_served_in_turn_not_in_arrival_order() -> None:
    line = FairAdmission(capacity=1, max_waiting=10)
    line.acquire("busy", timeout=1)
    order: list[str] = []
    lock = threading.Lock()

    def wait(user: str) -> None:
        line.acquire(user, timeout=10)
        with lock:
            order.append(user)
        line.release()

    # the heavy user queues three requests before the light user's one
    threads: list[threading.Thread] = []
    for user in ["heavy", "heavy", "heavy", "light"]:
        thread = threading.Thread(target=wait, args=(user,))
        thread.start()
        threads.append(thread)
        _wait_for(lambda: line.waiting == len(threads))
    line.release()
    for thread in threads:
        thread.join(5)
    assert order == ["heavy", "light", "heavy", "heavy"]


def test_a_full_line_is_refused_at_once() -> None:
    line = FairAdmission(capacity=1, max_waiting=1)
    line.acquire("a", timeout=1)
    threading.Thread(target=lambda: _ignore_busy(line, "b", 2)).start()
    _wait_for(lambda: line.waiting == 1)
    started = time.monotonic()
    with pytest.raises(ModelBusyError, match="already waiting"):
        line.acquire("c", timeout=10)
    assert time.monotonic() - started < 0.5


def test_a_wait_past_the_timeout_is_refused_and_leaves_the_line() -> None:
    line = FairAdmission(capacity=1, max_waiting=4)
    line.acquire("a", timeout=1)
    with pytest.raises(ModelBusyError, match="no generation slot within"):
        line.acquire("b", timeout=0.2)
    assert line.waiting == 0
    line.release()
    line.acquire("b", timeout=0.2)  # the slot went to nobody who had left


def test_a_cancelled_wait_ends_within_a_tenth_of_a_second() -> None:
    line = FairAdmission(capacity=1, max_waiting=4)
    line.acquire("a", timeout=1)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(GenerationCancelled):
        line.acquire("b", timeout=30, cancel=cancel)
    assert time.monotonic() - started < 0.5
    assert line.waiting == 0


def _ignore_busy(line: FairAdmission, user: str, timeout: float) -> None:
    try:
        line.acquire(user, timeout=timeout)
    except ModelBusyError:
        return
    line.release()
