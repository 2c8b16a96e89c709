"""Escalation checks are pluggable: the cascade passes over a reply any check doubts."""

from __future__ import annotations

from milliwatt.agent.escalation import default_checks, low_confidence
from milliwatt.agent.runner import Agent
from milliwatt.config import AgentConfig
from milliwatt.models.base import ModelResponse
from milliwatt.models.fake import FakeModel


def small_and_large() -> tuple[FakeModel, FakeModel]:
    small = FakeModel(lambda messages, tools: "I think it is maybe blue", name="small")
    large = FakeModel(lambda messages, tools: "It is blue.", name="large")
    return small, large


def hedging(response: ModelResponse) -> str | None:
    return "hedged" if "maybe" in response.text else None


def test_a_custom_check_escalates_to_the_next_model() -> None:
    small, large = small_and_large()
    agent = Agent(AgentConfig(), [small, large], escalate_on=[hedging])
    result = agent.run("What colour is the sky on a clear day at noon, in words")
    assert (result.model, result.answer) == ("large", "It is blue.")
    assert len(small.calls) == 1 and len(large.calls) == 1


def test_without_checks_the_first_reply_stands() -> None:
    small, large = small_and_large()
    result = Agent(AgentConfig(), [small, large]).run(
        "What colour is the sky on a clear day at noon, in words"
    )
    assert (result.model, result.answer) == ("small", "I think it is maybe blue")
    assert large.calls == []


def test_the_default_check_is_the_configured_confidence() -> None:
    assert default_checks(AgentConfig()) == ()
    (check,) = default_checks(AgentConfig(confidence_threshold=-1.0))
    unsure = ModelResponse("small", "blue", mean_logprob=-2.5)
    sure = ModelResponse("small", "blue", mean_logprob=-0.2)
    assert check(unsure) == "was unsure (mean token log-probability -2.50)"
    assert check(sure) is None
    assert low_confidence(-1.0)(ModelResponse("small", "blue")) is None  # no log-probs: trust
