"""One agent turn on a thread of its own, its events handed to the event loop as they come.

The agent loop blocks (on the model, on tools), so it cannot run on the event loop; running
each `next()` through a thread pool would cost a hand-off per token and tie up pool threads
while a request waits for a model slot. Here one thread drives the turn from start to end
and posts each event into an asyncio queue. When the client goes away the gateway calls
`stop()`: the model generation is cancelled within a token and the turn is not stored.

Turn threads are reused: starting a thread makes the event loop wait until the new thread
runs, which on busy cores (the model generating) is milliseconds added to every request,
tool answers included. Idle threads wait for the next turn instead; they are daemons, so a
server that stops never waits for a turn to finish.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Generator

from milliwatt.agent.events import RunEvent, RunResult
from milliwatt.models.base import GenerationCancelled

# a generator, not any iterator: a turn stopped early is closed so that it is not stored
StartTurn = Callable[[threading.Event], Generator[RunEvent, None, None]]


class _End:
    """Posted after the last event, with the exception that ended the turn, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _TurnThreads:
    """Daemon threads that run one job each at a time; a new thread only when none is idle."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            self._idle -= not spawn  # the idle thread that will take this job
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._serve, name="agent-turn", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                self._idle += 1


_THREADS = _TurnThreads()


class AgentThread:
    def __init__(self, start: StartTurn) -> None:
        self.cancel = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[RunEvent | _End] = asyncio.Queue()
        self._done = False
        _THREADS.run(lambda: self._run(start))

    async def next(self) -> RunEvent | None:
        """The turn's next event; None after the last. Raises what the turn raised."""
        if self._done:
            return None
        item = await self._queue.get()
        if isinstance(item, _End):
            self._done = True
            if item.error is not None:
                raise item.error
            return None
        return item

    def ready(self) -> bool:
        """Whether `next()` would answer at once (an event is waiting, or the turn ended)."""
        return self._done or not self._queue.empty()

    async def result(self) -> RunResult:
        """Wait for the turn's end and return its result."""
        while True:
            event = await self.next()
            if isinstance(event, RunResult):
                return event
            if event is None:
                raise GenerationCancelled()

    def stop(self) -> None:
        self.cancel.set()

    def _run(self, start: StartTurn) -> None:
        error: BaseException | None = None
        try:
            events = start(self.cancel)
            try:
                for event in events:
                    self._post(event)
                    if self.cancel.is_set():
                        break
            finally:
                events.close()  # a turn stopped early is not stored
        except GenerationCancelled:
            pass
        except Exception as exc:  # handed to the request, which answers it
            error = exc
        self._post(_End(error))

    def _post(self, item: RunEvent | _End) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop has closed: the server is shutting down
            self.cancel.set()
