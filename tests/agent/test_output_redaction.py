"""Nothing secret leaves the agent: the streamed text, the answer and the stored turn are
scanned, including a credential a tool resolved by reference and the model repeated."""

from __future__ import annotations

from pathlib import Path

from milliwatt.agent.runner import Agent, RunResult, TextDelta
from milliwatt.config import AgentConfig
from milliwatt.memory.sqlite import SqliteSessionStore
from milliwatt.models.base import ModelResponse, ToolCall
from milliwatt.models.fake import FakeModel, scripted
from milliwatt.shield.redaction import MASK
from milliwatt.shield.secrets import Secrets
from milliwatt.tools.registry import Effect, ToolRegistry, tool

VALUE = "mailbox-pass-93-" + "q" * 12
SECRETS = Secrets(environ={"MAILBOX_PASSWORD": VALUE})


@tool(effects={Effect.READS_UNTRUSTED})
def mailbox_login() -> str:
    """Log in to the mailbox (the password comes by reference, never from the model)."""
    password = SECRETS.get("env:MAILBOX_PASSWORD")
    return f"logged in; server said: welcome, your password {password} is weak"


def make_agent(model: FakeModel, tmp_path: Path) -> tuple[Agent, SqliteSessionStore]:
    store = SqliteSessionStore(tmp_path / "sessions.db")
    agent = Agent(
        AgentConfig(tools=["mailbox_login"]),
        [model],
        tools=ToolRegistry([mailbox_login]),
        store=store,
    )
    return agent, store


def test_keys_and_cards_in_a_streamed_answer_are_masked_everywhere(tmp_path: Path) -> None:
    key = "ghp_" + "k" * 36
    answer = f"Your token is {key} and your card 4111 1111 1111 1111 was charged 42 dollars."
    agent, store = make_agent(FakeModel(scripted(answer)), tmp_path)
    events = list(agent.stream("what are my details?", session="s1"))
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    result = events[-1]
    assert isinstance(result, RunResult)
    expected = f"Your token is {MASK} and your card {MASK} was charged 42 dollars."
    assert streamed == result.answer == expected
    assert store.history("s1")[-1].content == expected


def test_a_secret_a_tool_resolved_is_masked_when_the_model_repeats_it(tmp_path: Path) -> None:
    def reply(messages, tools):  # type: ignore[no-untyped-def]
        results = [m for m in messages if m.role == "tool"]
        if not results:
            return ModelResponse("fake", tool_calls=[ToolCall("c1", "mailbox_login", {})])
        return f"Done. {results[-1].content}"

    agent, _ = make_agent(FakeModel(reply), tmp_path)
    result = agent.run("log in to my mailbox")
    assert VALUE not in result.answer
    # the tool's result reaches the model spotlighted (between markers): it is untrusted
    assert result.answer.startswith("Done. ") and "logged in" in result.answer
    assert MASK in result.answer
