"""Every error milliwatt raises on purpose, in one hierarchy.

A leaf: it imports nothing of milliwatt, so every layer may raise these. The gateway maps
each type to an HTTP status in one table (gateway/errors.py); the command line maps them to
one line on stderr (cli.py). Callers catch by type, never by the message's text.

    MilliwattError
    ├── InvalidRequestError (also ValueError)       400 invalid_value
    │   ├── InvalidSessionNameError                 400 invalid_value, param "user"
    │   └── ContextOverflowError                    400 context_length_exceeded
    ├── AuthenticationError                         401 invalid_api_key (or its own code)
    │   └── OtpError                                401 invalid_otp
    │       └── OtpLockedError (also RateLimited)   429 invalid_otp
    ├── PolicyDeniedError                           403 policy_denied
    ├── WafRefusedError                             403 request_refused (or its own status)
    ├── UnknownAgentError (also KeyError)           404 model_not_found
    ├── RateLimitedError                            429 rate_limit_exceeded (or its own code)
    ├── BudgetExceededError                         429 budget_exceeded
    ├── ModelError                                  503 model_unavailable, Retry-After
    │   ├── ModelBusyError
    │   └── ModelUnavailableError
    └── ServiceUnavailableError                     503 service_unavailable
"""

from __future__ import annotations


class MilliwattError(Exception):
    """Base of every error milliwatt raises on purpose."""


class InvalidRequestError(MilliwattError, ValueError):
    """What was asked for is malformed; `param` names the field at fault, when one is."""

    param: str | None = None


class InvalidSessionNameError(InvalidRequestError):
    """A session name outside the allowed letters or length (it is the request's `user`)."""

    param = "user"


class ContextOverflowError(InvalidRequestError):
    """The prompt does not fit in the model's context window."""

    param = "messages"

    def __init__(self, prompt_tokens: int, context_length: int) -> None:
        super().__init__(
            f"the request needs {prompt_tokens} tokens but the model's context holds "
            f"{context_length}"
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


class AuthenticationError(MilliwattError):
    """Credentials that do not authenticate; `code` says which way (OpenAI's error codes)."""

    def __init__(self, message: str, code: str = "invalid_api_key") -> None:
        super().__init__(message)
        self.code = code


class PolicyDeniedError(MilliwattError):
    """A deterministic control refused the action."""


class WafRefusedError(MilliwattError):
    """The request was refused before any agent saw it; `status` is the refusal's own."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class UnknownAgentError(MilliwattError, KeyError):
    """No agent (an API "model") has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown agent: {self.name!r}"


class RateLimitedError(MilliwattError):
    """Too many requests or tokens for now; `headers` tell the client when to come back."""

    code: str = "rate_limit_exceeded"
    headers: dict[str, str] = {}  # noqa: RUF012 (replaced per instance, never mutated)


class OtpError(AuthenticationError):
    """An operator's code that does not authorise: wrong, replayed or skewed."""

    def __init__(self, message: str, code: str = "invalid_otp") -> None:
        super().__init__(message, code)


class OtpLockedError(RateLimitedError, OtpError):
    """Too many wrong codes: the operator must wait before trying again."""

    code = "invalid_otp"


class BudgetExceededError(MilliwattError):
    """A spending budget (tokens, joules, steps) is used up."""


class ModelError(MilliwattError):
    """The backend failed or timed out; the request may be retried later."""

    retry_after: float = 5.0  # seconds a client should wait before trying again


class ModelBusyError(ModelError):
    """Every generation slot is taken and the line is full or too slow; try again shortly."""

    retry_after = 2.0


class ModelUnavailableError(ModelError):
    """The model's worker is (re)starting after a crash; try again shortly."""

    retry_after = 3.0


class ServiceUnavailableError(MilliwattError):
    """A service milliwatt depends on cannot be reached; the message may hold its internals,
    so clients are told only which `service` failed."""

    service: str = "a service milliwatt depends on"
    code: str = "service_unavailable"
    retry_after: float = 5.0
