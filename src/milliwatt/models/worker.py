"""A supervised model worker process, seen from the process that uses it.

`ModelWorker` starts `milliwatt.models.worker_process`, hands it generations and streams back
their text. One reader thread receives the worker's messages and routes each event to the
queue of the request it belongs to. When the worker dies (a segfault in native code, an
out-of-memory kill), every generation it was running fails with ModelError, new ones get
ModelUnavailableError (503 + Retry-After) while it restarts, and the reader starts a new
one, waiting longer after each crash that comes soon after a start.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from milliwatt.models.admission import FairAdmission
from milliwatt.models.base import GenerationCancelled, ModelError, ModelUnavailableError
from milliwatt.models.llamacpp_engine import Finished, GenerateRequest

log = logging.getLogger(__name__)

STARTUP_SECONDS = 120.0
_POLL_SECONDS = 0.05  # how soon a waiting caller notices that its client has gone


@dataclass(frozen=True)
class WorkerSpec:
    path: Path
    parallel: int
    context_length: int
    threads: int
    max_waiting: int = 64
    queue_timeout_seconds: float = 30.0


class _Died:
    """Put in a request's queue when the worker ended under it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class ModelWorker:
    def __init__(self, spec: WorkerSpec, *, name: str) -> None:
        self.spec = spec
        self.name = name
        self.info: dict[str, Any] = {}
        self.restarts = 0
        self.last_exit: str | None = None
        self.admission = FairAdmission(spec.parallel, spec.max_waiting)
        self._ids = itertools.count(1)
        self._streams: dict[int, queue.SimpleQueue[str | Finished | _Died]] = {}
        self._lock = threading.Lock()  # guards _streams, _connection and _state
        self._send_lock = threading.Lock()
        self._state = "starting"
        self._closing = False
        self._process, self._socket, self._connection = self._spawn()
        self._state = "ready"
        self._reader = threading.Thread(
            target=self._read_forever, name=f"{name}-worker", daemon=True
        )
        self._reader.start()

    # the caller's side

    def generate(
        self,
        request: GenerateRequest,
        *,
        user: str = "anonymous",
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> Generator[str | Finished, None, None]:
        """Yield text pieces, then the Finished event. Raises ModelError on failure."""
        if self._state != "ready":
            raise ModelUnavailableError(f"{self.name}: the model worker is {self._state}")
        self.admission.acquire(user, self.spec.queue_timeout_seconds, cancel)
        stream: queue.SimpleQueue[str | Finished | _Died] = queue.SimpleQueue()
        request_id = next(self._ids)
        finished = False
        try:
            with self._lock:
                if self._state != "ready":
                    raise ModelUnavailableError(f"{self.name}: the model worker is {self._state}")
                self._streams[request_id] = stream
            self._send(("generate", request_id, request))
            while True:
                try:
                    event = stream.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    event = None
                if cancel is not None and cancel.is_set():
                    raise GenerationCancelled()
                if event is None:
                    if deadline is not None and time.monotonic() > deadline:
                        raise ModelError(f"{self.name}: no answer in time")
                    continue
                if isinstance(event, _Died):
                    finished = True  # nothing left to cancel
                    raise ModelError(f"{self.name}: {event.reason}")
                if isinstance(event, Finished):
                    finished = True
                    if event.reason == "error":
                        raise ModelError(f"{self.name}: {event.error}")
                    yield event
                    return
                yield event
        finally:
            with self._lock:
                self._streams.pop(request_id, None)
            if not finished:  # the caller stopped early: free the slot in the worker too
                self._send_quietly(("cancel", request_id))
            self.admission.release()

    def status(self) -> dict[str, Any]:
        return {
            "state": self._state,
            "pid": self._process.pid,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "running": self.admission.running,
            "waiting": self.admission.waiting,
        }

    @property
    def pid(self) -> int:
        return self._process.pid

    def close(self) -> None:
        self._closing = True
        # shutdown, not just close: it wakes the reader blocked on the socket and tells the
        # worker, whose loop ends when its parent's end is gone
        self._socket.shutdown(socket.SHUT_RDWR)
        self._connection.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    # the worker's side

    def _spawn(self) -> tuple[subprocess.Popen[bytes], socket.socket, Connection]:
        ours, theirs = socket.socketpair()
        spec = {
            "path": str(self.spec.path),
            "parallel": self.spec.parallel,
            "context_length": self.spec.context_length,
            "threads": self.spec.threads,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "milliwatt.models.worker_process", "--fd",
             str(theirs.fileno()), json.dumps(spec)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        theirs.close()
        connection = Connection(os.dup(ours.fileno()))
        if not connection.poll(STARTUP_SECONDS):
            process.kill()
            raise ModelError(f"{self.name}: the model worker did not start in time")
        try:
            kind, payload = connection.recv()
        except (EOFError, OSError):
            raise ModelError(f"{self.name}: the model worker {_exit_reason(process)}") from None
        if kind != "ready":
            raise ModelError(f"{self.name}: {payload}")
        self.info = payload
        return process, ours, connection

    def _read_forever(self) -> None:
        backoff = 0.5
        while True:
            started = time.monotonic()
            self._read(self._connection)
            if self._closing:
                return
            with self._lock:
                self._state = "restarting"
                streams, self._streams = self._streams, {}
            reason = _exit_reason(self._process)
            self.last_exit = reason
            self._connection.close()
            self._socket.close()
            log.error("%s: the model worker %s; restarting it", self.name, reason)
            for stream in streams.values():
                stream.put(_Died(f"the model worker {reason}; it is restarting"))
            # a worker that dies soon after its start is restarted less and less eagerly
            backoff = 0.5 if time.monotonic() - started > 60 else min(backoff * 2, 30.0)
            time.sleep(backoff)
            while not self._closing:
                try:
                    spawned = self._spawn()
                    with self._lock:  # ready only once the new connection is in place
                        self._process, self._socket, self._connection = spawned
                        self.restarts += 1
                        self._state = "ready"
                    break
                except ModelError as exc:
                    log.error("%s: %s; trying again in %g s", self.name, exc, backoff)
                    time.sleep(backoff)

    def _read(self, connection: Connection) -> None:
        """Route events to their requests until the worker's end of the socket closes."""
        streams = self._streams
        while True:
            try:
                kind, payload = connection.recv()
            except (EOFError, OSError):
                return
            if kind == "events":
                for request_id, event in payload:
                    stream = streams.get(request_id)
                    if stream is not None:
                        stream.put(event)

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            with self._send_lock:
                self._connection.send(message)
        except OSError as exc:
            raise ModelUnavailableError(f"{self.name}: the model worker is gone ({exc})") from None

    def _send_quietly(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(ModelUnavailableError):  # a dead worker has nothing to cancel
            self._send(message)


def _exit_reason(process: subprocess.Popen[bytes]) -> str:
    try:
        code = process.wait(2)
    except subprocess.TimeoutExpired:
        process.kill()
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"
