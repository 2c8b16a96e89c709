"""Error types to HTTP answers, in one table (the hierarchy is in milliwatt/errors.py).

An error's status and OpenAI error code come from the nearest of its classes in STATUS;
an error that carries its own `code`, `param`, `headers` or `retry_after` adds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from milliwatt.errors import (
    AuthenticationError,
    BudgetExceededError,
    ContextOverflowError,
    InvalidRequestError,
    MilliwattError,
    ModelError,
    PolicyDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    UnknownAgentError,
    WafRefusedError,
)
from milliwatt.gateway.schemas import ApiError


def _own_text(exc: MilliwattError) -> str:
    return str(exc)


def _unknown_model(exc: MilliwattError) -> str:
    name = exc.name if isinstance(exc, UnknownAgentError) else str(exc)
    return f"the model {name!r} does not exist; GET /v1/models lists them"


def _unavailable(exc: MilliwattError) -> str:
    service = exc.service if isinstance(exc, ServiceUnavailableError) else "a service"
    return f"{service} is unavailable; retry shortly"


@dataclass(frozen=True)
class Answer:
    status: int
    code: str
    message: Callable[[MilliwattError], str] = _own_text
    param: str | None = None  # the request field at fault, unless the error names its own


STATUS: dict[type[MilliwattError], Answer] = {
    InvalidRequestError: Answer(400, "invalid_value"),
    ContextOverflowError: Answer(400, "context_length_exceeded"),
    AuthenticationError: Answer(401, "invalid_api_key"),
    PolicyDeniedError: Answer(403, "policy_denied"),
    WafRefusedError: Answer(403, "request_refused"),
    UnknownAgentError: Answer(404, "model_not_found", _unknown_model, "model"),
    RateLimitedError: Answer(429, "rate_limit_exceeded"),
    BudgetExceededError: Answer(429, "budget_exceeded"),
    ModelError: Answer(503, "model_unavailable", lambda e: f"the model backend failed: {e}"),
    ServiceUnavailableError: Answer(503, "service_unavailable", _unavailable),
}


def answer_for(kind: type[MilliwattError]) -> Answer:
    """The table's row for the nearest class of `kind` (MilliwattError itself is a 500)."""
    for cls in kind.__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return Answer(500, "internal_error")


def api_error(exc: MilliwattError) -> ApiError:
    """The HTTP answer for `exc`, by its type."""
    row = answer_for(type(exc))
    status = exc.status if isinstance(exc, WafRefusedError) else row.status
    headers = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, ModelError | ServiceUnavailableError):
        headers["Retry-After"] = str(math.ceil(exc.retry_after))
    return ApiError(
        status,
        row.message(exc),
        param=getattr(exc, "param", None) or row.param,
        code=getattr(exc, "code", None) or row.code,
        headers=headers,
    )
