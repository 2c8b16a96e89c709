"""Turn threads: an idle one is reused, and a turn never waits for another to finish."""

from __future__ import annotations

import threading

from milliwatt.gateway.agent_thread import _TurnThreads


def test_an_idle_thread_takes_the_next_turn() -> None:
    threads = _TurnThreads()
    names: list[int] = []
    for _ in range(5):
        done = threading.Event()
        threads.run(lambda done=done: (names.append(threading.get_ident()), done.set()))
        assert done.wait(5)
        for _ in range(100):  # the thread counts itself idle just after the job returns
            if threads._idle == 1:
                break
            threading.Event().wait(0.01)
    assert len(set(names)) == 1


def test_turns_that_block_run_side_by_side() -> None:
    threads = _TurnThreads()
    release = threading.Event()
    started = threading.Barrier(9, timeout=5)  # 8 turns and this test
    idents: set[int] = set()

    def turn() -> None:
        idents.add(threading.get_ident())
        started.wait()  # every turn is running at once, or this times out
        release.wait(5)

    for _ in range(8):
        threads.run(turn)
    started.wait()
    release.set()
    assert len(idents) == 8
