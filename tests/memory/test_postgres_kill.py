"""kill -9 of a process writing turns to PostgreSQL: every turn it was told is stored is
there, whole; nothing of a turn in flight is half there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from milliwatt.memory.stores import open_session_store

WRITER = textwrap.dedent(
    """
    import sys
    from milliwatt.memory.postgres import PostgresSessionStore
    from milliwatt.memory.sessions import TurnCost
    from milliwatt.models.base import Message

    store = PostgresSessionStore(sys.argv[1])
    i = 0
    while True:
        body = f"turn {i} " + "x" * 50_000  # long: the kill often lands inside a write
        messages = [Message("user", body), Message("assistant", f"answer {i}")]
        store.append_turn("durable", "milliwatt", messages, TurnCost(i, 1, 0.0, 0.0))
        print(f"ack {i}", flush=True)  # acknowledged only once append_turn has returned
        i += 1
    """
)


def test_every_acknowledged_turn_survives_kill_9(postgres_url: str, tmp_path: Path) -> None:
    open_session_store(tmp_path, postgres_url)  # migrate first, so the child starts writing at once
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, str(script), postgres_url], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    acknowledged: list[int] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 25 and time.monotonic() < deadline:
        line = child.stdout.readline()
        assert line, f"the writer exited with {child.poll()}"
        acknowledged.append(int(line.split()[1]))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    acknowledged += [int(line.split()[1]) for line in child.stdout.read().splitlines()]
    assert child.returncode == -signal.SIGKILL and len(acknowledged) >= 25

    history = open_session_store(tmp_path, postgres_url).history("durable")
    assert len(history) % 2 == 0  # whole turns only
    stored = []
    for user, assistant in zip(history[::2], history[1::2], strict=True):
        number = int(user.content.split()[1])
        assert user.content == f"turn {number} " + "x" * 50_000
        assert (assistant.role, assistant.content) == ("assistant", f"answer {number}")
        stored.append(number)
    # every acknowledged turn, in order; at most the one in flight besides
    assert stored[: len(acknowledged)] == acknowledged
    assert len(stored) - len(acknowledged) <= 1
