"""Compaction: the instructions and the newest turns survive; older turns become a note."""

from __future__ import annotations

import pytest

from milliwatt.agent.context import fit_to_context
from milliwatt.models.base import ContextOverflowError, Message
from milliwatt.models.fake import FakeModel, scripted


def conversation(turns: int) -> list[Message]:
    messages = [Message("system", "be brief")]
    for i in range(turns):
        messages += [
            Message("user", f"question {i} " + "word " * 20),
            Message("assistant", "ok " * 20),
        ]
    return [*messages, Message("user", "the newest question")]


def test_short_conversation_is_untouched() -> None:
    model = FakeModel(scripted(), context_length=10_000)
    messages = conversation(3)
    assert fit_to_context(messages, model, [], reserve=100) is messages


def test_long_conversation_keeps_instructions_and_latest_turns() -> None:
    model = FakeModel(scripted(), context_length=600)
    messages = conversation(30)
    fitted = fit_to_context(messages, model, [], reserve=50)
    assert model.count_tokens(fitted) <= 550
    assert fitted[0].content == "be brief"
    assert fitted[-1].content == "the newest question"
    assert fitted[-3].content.startswith("question 29")  # the newest earlier turn is kept whole
    note = fitted[1]
    assert note.role == "system" and "compacted" in note.content
    assert "question 0" not in " ".join(m.content for m in fitted[2:])


def test_a_message_too_large_for_the_context_is_an_error() -> None:
    model = FakeModel(scripted(), context_length=50)
    with pytest.raises(ContextOverflowError, match="context holds 50"):
        fit_to_context([Message("user", "word " * 100)], model, [], reserve=10)
