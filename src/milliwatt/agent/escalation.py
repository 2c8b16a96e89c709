"""When the cascade passes a reply over for the next model: pluggable checks.

A check looks at a reply of a model that has a successor and says why it is not trusted
(escalate) or None (accept). The cascade asks its checks in order; the first reason wins.
An empty reply and an invalid tool call escalate whatever the checks say.
"""

from __future__ import annotations

from collections.abc import Callable

from milliwatt.config import AgentConfig
from milliwatt.models.base import ModelResponse

EscalationCheck = Callable[[ModelResponse], str | None]


def low_confidence(threshold: float) -> EscalationCheck:
    """Escalate a reply whose mean token log-probability is below `threshold`."""

    def check(response: ModelResponse) -> str | None:
        if response.mean_logprob is None or response.mean_logprob >= threshold:
            return None
        return f"was unsure (mean token log-probability {response.mean_logprob:.2f})"

    return check


def default_checks(config: AgentConfig) -> tuple[EscalationCheck, ...]:
    """The agent's configured checks: confidence, when it has a threshold."""
    threshold = config.confidence_threshold
    return () if threshold is None else (low_confidence(threshold),)
