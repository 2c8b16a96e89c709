"""What the egress guard raises: a refusal by policy, or a request that could not complete."""

from __future__ import annotations


class EgressError(Exception):
    """An outbound request did not complete; the message is safe to show."""


class EgressBlocked(EgressError):
    """The policy refused the request; `reason` says precisely why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidURL(EgressBlocked):
    """The URL is malformed or ambiguous (different parsers could read it differently)."""


class EgressTimeout(EgressError):
    """The request ran past the policy's total deadline."""
