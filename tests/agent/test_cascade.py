"""The cascade: retry of invalid calls, escalation to the next model, budgets, confidence.

Scripted models make the logic deterministic; the last test runs the real bundled model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from milliwatt.agent.runner import Agent, RunResult, TextDelta
from milliwatt.config import AgentConfig, Budgets
from milliwatt.models.base import (
    DEFAULT_GENERATION,
    GenerationSettings,
    Message,
    ModelResponse,
    ToolCall,
    ToolSpec,
)
from milliwatt.models.fake import FakeModel, scripted
from milliwatt.tools.builtin import builtin_registry
from milliwatt.tools.registry import Effect, ToolRegistry, tool

written: list[str] = []


@tool(effects={Effect.PURE})
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(effects={Effect.WRITES})
def note(text: str) -> str:
    """Write a note down."""
    written.append(text)
    return "noted"


def call(name: str, **arguments: object) -> ModelResponse:
    return ModelResponse("fake", tool_calls=[ToolCall(f"c-{name}", name, dict(arguments))])


def unsure(text: str = "", *calls: ToolCall) -> ModelResponse:
    return ModelResponse("fake", text, list(calls), mean_logprob=-3.0)


def agent(*models: FakeModel, **config: object) -> Agent:
    return Agent(
        AgentConfig(tools=["add", "note"], **config),  # type: ignore[arg-type]
        list(models),
        tools=ToolRegistry([add, note]),
    )


def streamed(result_agent: Agent, message: str) -> tuple[str, RunResult]:
    events = list(result_agent.stream(message))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert isinstance(events[-1], RunResult)
    return text, events[-1]


def test_an_invalid_call_is_retried_once_with_the_error() -> None:
    small = FakeModel(scripted(call("add", a="two", b=2), call("add", a=2, b=2), "it is 4"))
    result = agent(small).run("add two and two")
    assert result.answer == "it is 4" and result.model == "fake"
    retry_prompt = small.calls[1]
    assert (
        retry_prompt[-1].role == "tool" and "invalid arguments for add" in retry_prompt[-1].content
    )
    assert [t.ok for t in result.tools_called] == [False, True]


def test_a_second_invalid_call_escalates_to_the_next_model() -> None:
    small = FakeModel(scripted(call("add", a="x", b=1), call("add", b=1)), name="small")
    large = FakeModel(scripted(call("add", a=1, b=1), "two"), name="large")
    result = agent(small, large).run("add one and one")
    assert result.answer == "two" and result.model == "large"
    # the larger model starts from the request, without the failed exchanges
    assert [m.role for m in large.calls[0]] == ["system", "user"]
    assert [t.ok for t in result.tools_called] == [False, False, True]
    assert [e.name for e in result.ledger.entries if e.kind == "model"] == [
        "small",
        "small",
        "large",
        "large",
    ]


def test_with_no_larger_model_it_says_plainly_that_it_cannot_answer() -> None:
    small = FakeModel(scripted(call("add", a="x", b=1), call("add", a=[], b=1)), name="smollm")
    result = agent(small).run("add x and one")
    assert result.answer.startswith("I cannot answer this reliably: smollm made an invalid")
    assert "no larger model" in result.answer
    assert not any(t.ok for t in result.tools_called)
    assert len(small.calls) == 2


def test_an_empty_reply_is_asked_again_without_tools_then_escalates() -> None:
    cut = ModelResponse("small", "", stop_reason="length")
    small = FakeModel(scripted(cut, ModelResponse("small", "")), name="small")
    large = FakeModel(scripted("hello"), name="large")
    assert agent(small, large).run("hi").answer == "hello"
    tools_offered = [bool(t) for t in small.tool_lists]
    assert tools_offered == [True, False]  # the retry is in plain words
    alone = FakeModel(scripted(cut, ModelResponse("small", "")), name="small")
    answer = agent(alone).run("hi").answer
    assert answer == "I don't have an answer to that (small gave an empty reply)."


def test_an_unsure_answer_escalates_and_is_never_shown() -> None:
    small = FakeModel(scripted(unsure("a guess")), name="small")
    large = FakeModel(scripted("the answer"), name="large")
    text, result = streamed(agent(small, large, confidence_threshold=-1.0), "question")
    assert text == "the answer" and result.answer == "the answer" and result.model == "large"


def test_an_unsure_tool_call_escalates_before_the_tool_runs() -> None:
    written.clear()
    small = FakeModel(scripted(unsure("", ToolCall("1", "note", {"text": "wrong"}))), name="s")
    large = FakeModel(scripted(call("note", text="right"), "done"), name="large")
    result = agent(small, large, confidence_threshold=-1.0).run("note it")
    assert written == ["right"] and result.answer == "done"


def test_a_sure_answer_or_no_threshold_means_no_escalation() -> None:
    sure = ModelResponse("small", "fine", mean_logprob=-0.2)
    large = FakeModel(scripted(), name="large")
    result = agent(FakeModel(scripted(sure)), large, confidence_threshold=-1.0).run("q")
    assert result.answer == "fine" and large.calls == []
    result = agent(FakeModel(scripted(unsure("unchecked"))), large).run("q")  # no threshold
    assert result.answer == "unchecked" and large.calls == []


def test_the_last_model_answers_even_when_unsure() -> None:
    last = FakeModel(scripted(unsure("best effort")), name="last")
    assert agent(last, confidence_threshold=-1.0).run("q").answer == "best effort"


class SettingsRecordingModel(FakeModel):
    asked_logprobs: bool | None = None

    def stream(  # type: ignore[no-untyped-def]
        self, messages, *, tools=(), json_schema=None, settings=DEFAULT_GENERATION
    ):
        self.asked_logprobs = settings.logprobs
        return super().stream(messages, tools=tools, json_schema=json_schema, settings=settings)


def test_only_a_model_that_may_escalate_is_asked_for_log_probabilities() -> None:
    small = SettingsRecordingModel(scripted(unsure("a guess")), name="small")
    large = SettingsRecordingModel(scripted("sure"), name="large")
    assert agent(small, large, confidence_threshold=-1.0).run("q").answer == "sure"
    assert small.asked_logprobs and not large.asked_logprobs  # nothing escalates past the last


def test_no_escalation_past_the_budget() -> None:
    small = FakeModel(scripted(unsure("a guess")), name="small")
    large = FakeModel(scripted("never asked"), name="large")
    budgets = Budgets(model_calls_per_request=1)
    text, result = streamed(
        agent(small, large, confidence_threshold=-1.0, budgets=budgets), "question"
    )
    assert result.answer == text == "a guess" and result.model == "small"
    assert large.calls == []

    invalid = FakeModel(scripted(call("add", a="x", b=1), call("add", a="y", b=1)))
    result = agent(invalid, large, budgets=Budgets(model_calls_per_request=2)).run("add")
    assert result.stop == "budget" and "model calls per request" in result.answer
    assert large.calls == []


def test_steps_count_across_models() -> None:
    def looping(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        return call("add", a="x", b=1)

    small, large = FakeModel(looping, name="small"), FakeModel(looping, name="large")
    result = agent(small, large, max_steps=3).run("loop")
    assert result.stop == "steps" and len(small.calls) + len(large.calls) == 3


def test_configuration_rejects_a_positive_threshold() -> None:
    with pytest.raises(ValueError, match="confidence_threshold"):
        AgentConfig(confidence_threshold=0.5)


def test_the_bundled_model_makes_only_parseable_schema_valid_calls() -> None:
    """Constrained decoding on the real 135M model: its output always parses and fits.

    Offered a choice, it may answer instead of calling (it often does); asked with only the
    call options in the schema, it must produce a call that passes the tool's validation.
    """
    from milliwatt.models.llamacpp import LlamaCppModel
    from milliwatt.models.loader import bundled_model_path
    from milliwatt.models.tool_prompt import tool_choice_schema

    try:
        path = bundled_model_path()
    except FileNotFoundError as exc:
        pytest.skip(f"the bundled model is not installed: {exc}")
    registry = builtin_registry()
    offered = [registry.get(n) for n in ("units.convert", "math.calculate", "dates.add")]
    specs = [ToolSpec(t.name, t.description, t.parameters) for t in offered]
    calls_only = {"anyOf": tool_choice_schema(specs)["anyOf"][:-1]}  # no answer option
    # a generous time limit: on a busy machine a 135M model may take minutes
    model = LlamaCppModel(Path(path), name="smollm2-135m", threads=1, timeout_seconds=900)
    settings = GenerationSettings(max_tokens=64, logprobs=True)
    prompt = [Message("system", "Use a tool."), Message("user", "convert 26.2 miles to km")]
    try:
        chosen = model.complete(prompt, tools=specs, settings=settings)
        forced = model.complete(prompt, json_schema=calls_only, settings=settings)
    finally:
        model.close()
    for made in chosen.tool_calls:
        assert made.name in {s.name for s in specs}
        registry.get(made.name).validate(made.arguments)  # raises if invalid
    if not chosen.tool_calls:
        assert chosen.text.strip() or chosen.stop_reason == "length"
    assert chosen.mean_logprob is not None and chosen.mean_logprob <= 0.0
    reply = json.loads(forced.text)
    assert reply["tool"] in {s.name for s in specs}
    registry.get(reply["tool"]).validate(reply["arguments"])


def test_a_repeated_identical_call_is_not_run_again_and_the_model_answers_in_words() -> None:
    written.clear()
    model = FakeModel(scripted(call("note", text="milk"), call("note", text="milk"), "Noted."))
    result = agent(model).run("note milk")
    assert result.answer == "Noted." and result.stop == "answer"
    assert written == ["milk"]  # run once
    assert [t.name for t in result.tools_called] == ["note"]
    assert [bool(t) for t in model.tool_lists] == [True, True, False]


def test_the_last_step_offers_no_tools_so_the_turn_ends_with_an_answer() -> None:
    replies = [call("add", a=i, b=1) for i in range(5)]
    model = FakeModel(scripted(*replies, "The sums are done."))
    result = agent(model, max_steps=6).run("add a few numbers")
    assert result.stop == "answer" and result.answer == "The sums are done."
    assert [bool(t) for t in model.tool_lists] == [True] * 5 + [False]


def test_a_looping_reply_is_cut_while_it_streams() -> None:
    loop = "A bat and a ball cost a dollar. The man laughed at the joke. " * 40
    model = FakeModel(scripted(loop.strip()))
    text, result = streamed(agent(model), "tell me a joke")
    assert text == result.answer == "A bat and a ball cost a dollar. The man laughed at the joke."
    assert result.stop == "answer"
    assert result.ledger.completion_tokens < 40  # stopped early, not after 480 words


def test_a_reply_of_nothing_but_a_loop_ends_shortly_and_honestly() -> None:
    model = FakeModel(scripted("\n " * 200, "\n " * 200))
    result = agent(model).run("hello")
    assert result.answer == "I don't have an answer to that (fake gave an empty reply)."
    assert [bool(t) for t in model.tool_lists] == [True, False]  # asked once more, in words
    assert result.ledger.completion_tokens < 100  # each stopped early


def test_replies_are_asked_for_with_the_agents_token_cap_and_stop_sequences() -> None:
    model = FakeModel(scripted("Hi there!\nUser: and now I speak for you"))
    text, result = streamed(agent(model, max_tokens=100, stop=["\nUser:"]), "hi")
    assert text == result.answer == "Hi there!"
    assert model.settings[0].max_tokens == 100 and model.settings[0].stop == ("\nUser:",)
