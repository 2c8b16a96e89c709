"""Budget checks, made before every model call. A breach ends the run with a message."""

from __future__ import annotations

from dataclasses import dataclass

from milliwatt.config import Budgets
from milliwatt.memory.sessions import TurnCost


@dataclass(frozen=True)
class Spent:
    tokens: int
    model_calls: int
    seconds: float


def budget_breach(
    budgets: Budgets, request: Spent, session: TurnCost | None, next_prompt_tokens: int
) -> str | None:
    """The first limit the next model call would break, described for the user, or None."""
    checks: list[tuple[str, float, float | None]] = [
        ("tokens_per_request", request.tokens + next_prompt_tokens, budgets.tokens_per_request),
        ("model_calls_per_request", request.model_calls + 1, budgets.model_calls_per_request),
        ("seconds_per_request", request.seconds, budgets.seconds_per_request),
    ]
    if session is not None:
        checks += [
            (
                "tokens_per_session",
                session.tokens + request.tokens + next_prompt_tokens,
                budgets.tokens_per_session,
            ),
            (
                "model_calls_per_session",
                session.model_calls + request.model_calls + 1,
                budgets.model_calls_per_session,
            ),
            (
                "seconds_per_session",
                session.seconds + request.seconds,
                budgets.seconds_per_session,
            ),
        ]
    for name, value, limit in checks:
        if limit is not None and value > limit:
            return (
                f"Stopped: the {name.replace('_', ' ')} budget ({limit:g}) would be exceeded "
                f"({value:g}). Raise budgets.{name} in the agent's configuration to allow more."
            )
    return None
