"""Who generates next: at most `capacity` generations run, the rest wait in a bounded line.

Each caller waits in their own line and the lines are served in turn, so one user who sends
twenty requests does not hold everyone else behind them. A wait that would be too long, or
a full line, is refused at once with how long to wait before trying again (the gateway
answers 503 with Retry-After), rather than held open.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from milliwatt.models.base import GenerationCancelled, ModelBusyError


@dataclass(eq=False)  # tickets are told apart by identity
class _Ticket:
    granted: bool = False


class FairAdmission:
    def __init__(self, capacity: int, max_waiting: int) -> None:
        self.capacity = capacity
        self.max_waiting = max_waiting
        self._running = 0
        self._lines: OrderedDict[str, deque[_Ticket]] = OrderedDict()
        self._waiting = 0
        self._changed = threading.Condition()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    def acquire(self, user: str, timeout: float, cancel: threading.Event | None = None) -> None:
        """Return once this caller may generate; raise ModelBusyError if it may not soon."""
        with self._changed:
            if self._running < self.capacity and not self._waiting:
                self._running += 1
                return
            if self._waiting >= self.max_waiting:
                raise ModelBusyError(f"{self._waiting} requests are already waiting")
            ticket = _Ticket()
            self._lines.setdefault(user, deque()).append(ticket)
            self._waiting += 1
            deadline = time.monotonic() + timeout
            while not ticket.granted:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (cancel is not None and cancel.is_set()):
                    self._withdraw(user, ticket)
                    if remaining <= 0:
                        raise ModelBusyError(f"no generation slot within {timeout:g} s")
                    raise GenerationCancelled()
                # a cancel is noticed within 0.1 s; a grant wakes the waiter at once
                self._changed.wait(min(remaining, 0.1))

    def release(self) -> None:
        with self._changed:
            self._running -= 1
            self._grant()
            self._changed.notify_all()

    def _grant(self) -> None:
        """Hand free slots to the first ticket of each line in turn."""
        while self._running < self.capacity and self._lines:
            user, line = self._lines.popitem(last=False)
            line.popleft().granted = True
            self._waiting -= 1
            self._running += 1
            if line:
                self._lines[user] = line  # this user's next request waits behind the others

    def _withdraw(self, user: str, ticket: _Ticket) -> None:
        line = self._lines.get(user)
        if line is not None and ticket in line:
            line.remove(ticket)
            self._waiting -= 1
            if not line:
                del self._lines[user]
