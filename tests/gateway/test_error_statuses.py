"""Each error type of milliwatt/errors.py reaches the client as its own HTTP status, through
the whole server app on loopback; no handler in the gateway reads an error's text."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from tests.gateway.live_app import live_app

from milliwatt.config import BUNDLED_MODEL
from milliwatt.errors import (
    AuthenticationError,
    BudgetExceededError,
    ContextOverflowError,
    InvalidRequestError,
    InvalidSessionNameError,
    MilliwattError,
    ModelBusyError,
    ModelError,
    ModelUnavailableError,
    OtpLockedError,
    PolicyDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    UnknownAgentError,
    WafRefusedError,
)
from milliwatt.gateway.errors import STATUS
from milliwatt.models.base import Message, ToolSpec
from milliwatt.models.fake import FakeModel

GATEWAY = Path(__file__).resolve().parents[2] / "src" / "milliwatt" / "gateway"


class Raising:
    """The model's reply: raises whatever error the test sets."""

    error: MilliwattError | None = None

    def __call__(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        if self.error is not None:
            raise self.error
        return "fine"


RAISING = Raising()

CASES: list[tuple[MilliwattError, int, str, str | None]] = [
    (InvalidRequestError("the request is odd"), 400, "invalid_value", "messages"),
    (InvalidSessionNameError("invalid session name 'x y'"), 400, "invalid_value", "user"),
    (ContextOverflowError(5000, 4096), 400, "context_length_exceeded", "messages"),
    (AuthenticationError("no such key"), 401, "invalid_api_key", None),
    (OtpLockedError("too many wrong codes"), 429, "invalid_otp", None),
    (PolicyDeniedError("not allowed here"), 403, "policy_denied", None),
    (WafRefusedError("refused by rule 942100"), 403, "request_refused", None),
    (WafRefusedError("too many arguments", status=413), 413, "request_refused", None),
    (UnknownAgentError("ghost"), 404, "model_not_found", "model"),
    (RateLimitedError("slow down"), 429, "rate_limit_exceeded", None),
    (BudgetExceededError("the day's tokens are spent"), 429, "budget_exceeded", None),
    (ModelError("the backend timed out"), 503, "model_unavailable", None),
    (ModelBusyError("every slot is taken"), 503, "model_unavailable", None),
    (ModelUnavailableError("restarting"), 503, "model_unavailable", None),
    (ServiceUnavailableError("redis at 10.0.0.1 refused"), 503, "service_unavailable", None),
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = FakeModel(RAISING, name=BUNDLED_MODEL)
    # the WAF is left out: it judges requests and answers of its own, not these mappings
    with live_app(tmp_path_factory.mktemp("data"), model, shield={"waf": False}) as base:
        yield base


@pytest.mark.parametrize(("error", "status", "code", "param"), CASES, ids=lambda c: repr(c))
def test_each_error_type_is_its_status(
    url: str, error: MilliwattError, status: int, code: str, param: str | None
) -> None:
    RAISING.error = error
    try:
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "milliwatt", "messages": [{"role": "user", "content": "Tell a tale."}]},
            timeout=30,
        )
    finally:
        RAISING.error = None
    assert reply.status_code == status, reply.text
    body = reply.json()["error"]
    assert (body["code"], body["param"]) == (code, param)
    if isinstance(error, ModelError | ServiceUnavailableError):
        assert int(reply.headers["retry-after"]) >= 1
    if isinstance(error, ServiceUnavailableError):  # its internals stay on the server
        assert "10.0.0.1" not in body["message"]


def test_every_type_in_the_table_is_exercised() -> None:
    exercised = {type(error) for error, *_ in CASES}
    assert set(STATUS) <= {cls for kind in exercised for cls in kind.__mro__}


def test_unknown_model_named_in_the_request_is_404(url: str) -> None:
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "ghost", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "model_not_found"


def test_no_gateway_handler_reads_an_errors_text() -> None:
    """`"..." in str(exc)` tells errors apart by wording; types do it instead."""
    offences = []
    for path in sorted(GATEWAY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Compare)
                and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
                and any(
                    isinstance(side, ast.Call)
                    and isinstance(side.func, ast.Name)
                    and side.func.id == "str"
                    for side in node.comparators
                )
            ):
                offences.append(f"{path.name}:{node.lineno}")
    assert offences == []
