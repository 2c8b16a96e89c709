"""What the egress guard raises: a refusal by policy, or a request that could not complete."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)
# told of every refusal, wherever it is raised (the server writes them to its audit trail)
_block_listeners: list[Callable[[str], None]] = []


def on_blocked(listener: Callable[[str], None]) -> None:
    """Call `listener(reason)` on each refusal the guard makes in this process."""
    _block_listeners.append(listener)


class EgressError(Exception):
    """An outbound request did not complete; the message is safe to show."""


class EgressBlocked(EgressError):
    """The policy refused the request; `reason` says precisely why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        for listener in _block_listeners:
            try:
                listener(reason)
            except Exception:  # a failing listener must not turn a refusal into a crash
                log.exception("egress block listener failed")


class InvalidURL(EgressBlocked):
    """The URL is malformed or ambiguous (different parsers could read it differently)."""


class EgressTimeout(EgressError):
    """The request ran past the policy's total deadline."""
