"""The model worker: a process that holds one llama.cpp model and generates for its parent.

    python -m milliwatt.models.worker_process --fd N '<spec as JSON>'

Native code runs here and nowhere else, so a segfault or an out-of-memory kill ends this
process and not the server (models/worker.py restarts it). The parent talks over one
socket (multiprocessing's Connection, pickled tuples):

    parent -> worker: ("generate", id, GenerateRequest) | ("cancel", id)
    worker -> parent: ("ready", info) | ("failed", message) | ("events", [(id, text | Finished)])

The loop reads every message that has arrived, decodes one batch, and sends what the batch
produced in one message. It ends when the parent's end of the socket closes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# the lowest priority: the gateway's short bursts (a tool answer, the WAF, other clients'
# tokens) take a core at once; the model loses only that time. Measured with 16 streams on 2
# cores (bench/serve_load.py): the tool route's p50 5.7 ms at 19 against 7.3 ms at 5, for
# 6% fewer tokens/s (docs/architecture.md)
WORKER_NICENESS = 19


def lower_priority() -> None:
    """Below the gateway: on a machine whose cores the model keeps busy, the scheduler still
    runs the gateway at once (the tool route, the WAF, other clients' tokens).

    Linux's SCHED_IDLE policy does that outright: a waking thread of any other policy takes
    the core from an idle-policy thread at once, where a nice 19 thread could keep it until
    its time slice ends (about 3 ms, per hand-off). Niceness is lowered too, for kernels and
    containers that refuse the policy. Linux keeps both per thread: each running thread is
    lowered, and threads started later (llama.cpp's) inherit them from the main thread."""
    os.nice(WORKER_NICENESS - os.nice(0))
    idle = getattr(os, "SCHED_IDLE", None)
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.is_dir() else ():
        with contextlib.suppress(OSError):  # a thread that has just ended, or a refusal
            os.setpriority(os.PRIO_PROCESS, int(task.name), WORKER_NICENESS)
            if idle is not None:
                os.sched_setscheduler(int(task.name), idle, os.sched_param(0))


def serve(connection: Connection, spec: dict[str, Any]) -> None:
    from llama_cpp import _logger, llama_print_system_info
    from llama_cpp._utils import suppress_stdout_stderr

    from milliwatt.models.llamacpp_engine import BatchEngine, Finished

    _logger.set_verbose(False)
    lower_priority()
    try:
        with suppress_stdout_stderr(disable=False):  # llama.cpp's load chatter is not ours
            engine = BatchEngine(
                Path(spec["path"]),
                parallel=spec["parallel"],
                context_length=spec["context_length"],
                threads=spec["threads"],
            )
    except (ValueError, OSError, RuntimeError) as exc:
        connection.send(("failed", str(exc)))
        return
    info = {
        "context_length": engine.context_length,
        "parallel": engine.parallel,
        "system_info": llama_print_system_info().decode(errors="replace"),
    }
    connection.send(("ready", info))
    while True:
        try:
            if engine.idle:
                connection.poll(None)  # nothing to decode: sleep until the parent writes
            while connection.poll(0):
                message = connection.recv()
                if message[0] == "generate":
                    _, request_id, request = message
                    try:
                        engine.submit(request_id, request)
                    except (ValueError, RuntimeError) as exc:
                        failed = Finished(0, "error", error=str(exc))
                        connection.send(("events", [(request_id, failed)]))
                elif message[0] == "cancel":
                    engine.cancel(message[1])
            events = engine.step()
            if events:
                connection.send(("events", events))
        except (EOFError, OSError):  # the parent is gone
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="milliwatt model worker (started by its parent)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("spec")
    args = parser.parse_args(argv)
    serve(Connection(args.fd), json.loads(args.spec))


if __name__ == "__main__":
    main(sys.argv[1:])
