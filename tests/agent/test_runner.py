"""The agent loop's logic, driven by a scripted model: deterministic, no weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from milliwatt.agent.runner import Agent, RunResult, TextDelta, ToolCalled
from milliwatt.config import AgentConfig, Budgets
from milliwatt.memory.sessions import SessionStore
from milliwatt.memory.sqlite import SqliteSessionStore
from milliwatt.memory.stores import open_session_store
from milliwatt.models.base import Message, ModelError, ModelResponse, ToolCall, ToolSpec, Usage
from milliwatt.models.fake import FakeModel, scripted
from milliwatt.tools.registry import Effect, ToolContext, ToolRegistry, tool


@tool(effects={Effect.PURE})
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(effects={Effect.PURE})
def whoami(context: ToolContext) -> str:
    """Name the calling user."""
    return context.user


def call(name: str, **arguments: object) -> ModelResponse:
    return ModelResponse("fake", tool_calls=[ToolCall(f"c-{name}", name, dict(arguments))])


def make_agent(
    model: FakeModel, tmp_path: Path, store: SessionStore | None = None, **config: object
) -> Agent:
    store = store or SqliteSessionStore(tmp_path / "sessions.db")
    return Agent(
        AgentConfig(tools=["add", "whoami"], **config),  # type: ignore[arg-type]
        [model],
        tools=ToolRegistry([add, whoami]),
        store=store,
        watts_per_core=10.0,
    )


def test_tool_call_result_goes_back_to_the_model(tmp_path: Path) -> None:
    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse | str:
        assert {t.name for t in tools} == {"add", "whoami"}
        results = [m for m in messages if m.role == "tool"]
        if not results:
            return call("add", a=2, b=40)
        return f"the sum is {results[-1].content}"

    model = FakeModel(reply)
    result = make_agent(model, tmp_path).run("add 2 and 40")
    assert result.answer == "the sum is 42"
    assert result.route == "model"
    assert [(t.name, t.arguments, t.result) for t in result.tools_called] == [
        ("add", {"a": 2, "b": 40}, "42")
    ]
    assert len(model.calls) == 2
    assert result.ledger.model_calls == 2
    assert [e.kind for e in result.ledger.entries] == ["model", "tool", "model"]


def test_invalid_and_unknown_tool_calls_are_reported_to_the_model(tmp_path: Path) -> None:
    model = FakeModel(scripted(call("add", a="two", b=1), call("nope"), "gave up"))
    result = make_agent(model, tmp_path).run("add")
    assert result.answer == "gave up"
    first, second = result.tools_called
    assert not first.ok and "a:" in first.result and "integer" in first.result
    assert not second.ok and "unknown tool" in second.result
    last_prompt = model.calls[-1]
    assert [m.role for m in last_prompt[-4:]] == ["assistant", "tool", "assistant", "tool"]


def test_context_is_injected_into_tools(tmp_path: Path) -> None:
    model = FakeModel(scripted(call("whoami"), "done"))
    result = make_agent(model, tmp_path).run("who am i", user="ada")
    assert result.tools_called[0].result == "ada"


def test_streams_text_then_result(tmp_path: Path) -> None:
    model = FakeModel(scripted("one two three"))
    events = list(make_agent(model, tmp_path).stream("count"))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "one two three"
    assert isinstance(events[-1], RunResult)
    assert not any(isinstance(e, ToolCalled) for e in events)


def test_step_limit_ends_the_run_with_a_message(tmp_path: Path) -> None:
    model = FakeModel(lambda messages, tools: call("add", a=1, b=1))
    result = make_agent(model, tmp_path, max_steps=3).run("loop forever")
    assert result.stop == "steps"
    assert "3 steps" in result.answer
    assert len(model.calls) == 3


def test_model_call_budget_is_checked_before_the_call(tmp_path: Path) -> None:
    model = FakeModel(lambda messages, tools: call("add", a=1, b=1))
    budgets = Budgets(model_calls_per_request=2)
    result = make_agent(model, tmp_path, budgets=budgets).run("loop")
    assert result.stop == "budget"
    assert "model calls per request" in result.answer
    assert len(model.calls) == 2  # the third call was never made


def test_token_budget_counts_the_next_prompt(tmp_path: Path) -> None:
    model = FakeModel(scripted("never"))
    budgets = Budgets(tokens_per_request=3)
    result = make_agent(model, tmp_path, budgets=budgets).run("a prompt longer than three tokens")
    assert result.stop == "budget"
    assert "tokens per request" in result.answer
    assert model.calls == []


def test_session_budget_spans_requests(tmp_path: Path, storage_url: str | None) -> None:
    model = FakeModel(lambda messages, tools: "ok")
    store = open_session_store(tmp_path, storage_url)
    agent = make_agent(model, tmp_path, store, budgets=Budgets(model_calls_per_session=2))
    assert agent.run("one", session="s").answer == "ok"
    assert agent.run("two", session="s").answer == "ok"
    third = agent.run("three", session="s")
    assert third.stop == "budget" and "model calls per session" in third.answer
    assert agent.run("other", session="t").answer == "ok"  # another session is not affected


def test_session_is_continued_and_stored_whole(tmp_path: Path, storage_url: str | None) -> None:
    model = FakeModel(lambda messages, tools: f"seen {len(messages)}")
    agent = make_agent(model, tmp_path, open_session_store(tmp_path, storage_url))
    agent.run("first", session="s1")
    second = agent.run("second", session="s1")
    assert second.answer == "seen 4"  # system, first, answer, second
    history = agent.store.history("s1")  # type: ignore[union-attr]
    assert [(m.role, m.content) for m in history] == [
        ("user", "first"),
        ("assistant", "seen 2"),
        ("user", "second"),
        ("assistant", "seen 4"),
    ]


def test_failing_model_leaves_no_half_turn(tmp_path: Path) -> None:
    calls = iter(["fine", ModelError("backend down")])

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    agent = make_agent(FakeModel(reply), tmp_path)
    agent.run("first", session="s")
    with pytest.raises(ModelError):
        agent.run("second", session="s")
    assert [m.content for m in agent.store.history("s")] == ["first", "fine"]  # type: ignore[union-attr]


def test_ledger_costs_every_step(tmp_path: Path) -> None:
    model = FakeModel(scripted(ModelResponse("fake", "hi", usage=Usage(7, 3))))
    result = make_agent(model, tmp_path).run("hello")
    body = result.to_dict()
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3}
    assert body["cost"]["ms"] >= 0 and body["cost"]["joules_est"] >= 0
    assert set(body) == {
        "answer",
        "route",
        "model",
        "tools_called",
        "usage",
        "cost",
        "stop",
        "session",
    }


def test_bad_input_is_refused_clearly(tmp_path: Path) -> None:
    agent = make_agent(FakeModel(scripted()), tmp_path)
    with pytest.raises(ValueError, match="empty"):
        agent.run("   ")
    with pytest.raises(ValueError, match="invalid session name"):
        agent.run("hi", session="../etc/passwd")


def test_a_request_a_tool_answers_never_reaches_the_model(tmp_path: Path) -> None:
    from milliwatt.agent.router import Router
    from milliwatt.tools.builtin import builtin_registry

    registry = builtin_registry()
    model = FakeModel(scripted("a story about 3 apples"))
    agent = Agent(AgentConfig(), [model], tools=registry, router=Router(registry))
    result = agent.run("what is 234 * 567?")
    assert result.route == "tool" and result.answer.endswith("132678")
    assert result.tools_called[0].name == "math.calculate"
    assert result.ledger.tokens == 0 and model.calls == []
    story = agent.run("tell me a story about 3 apples")
    assert story.route == "model" and len(model.calls) == 1
