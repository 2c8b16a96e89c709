"""A scripted model for testing the agent loop deterministically (no weights, no randomness).

def reply(messages, tools):
    if tools and not any(m.role == "tool" for m in messages):
        return ModelResponse("fake", tool_calls=[ToolCall("1", "add", {"a": 1, "b": 2})])
    return "the answer is " + messages[-1].content

model = FakeModel(reply)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from milliwatt.models.base import (
    DEFAULT_GENERATION,
    DEFAULT_MODEL_SETTINGS,
    GenerationSettings,
    Message,
    Model,
    ModelResponse,
    ModelSettings,
    StreamChunk,
    ToolSpec,
    Usage,
)

Reply = Callable[[Sequence[Message], Sequence[ToolSpec]], "ModelResponse | str"]


class FakeModel(Model):
    """Answers with whatever `reply` returns; counts one token per word."""

    local = True
    provider = "milliwatt.fake"

    def __init__(
        self,
        reply: Reply,
        *,
        name: str = "fake",
        context_length: int = 4096,
        settings: ModelSettings = DEFAULT_MODEL_SETTINGS,
    ) -> None:
        self.apply_settings(settings)
        self.reply = reply
        self.name = name
        self.context_length = context_length
        self.calls: list[list[Message]] = []  # every prompt it was given, for assertions
        self.tool_lists: list[list[ToolSpec]] = []  # the tools offered with each prompt
        self.settings: list[GenerationSettings] = []  # and the settings of each call

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        words = sum(len(m.content.split()) + 1 for m in messages)
        return words + sum(len(t.description.split()) + 1 for t in tools)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_GENERATION,
    ) -> Iterator[StreamChunk]:
        self.calls.append(list(messages))
        self.tool_lists.append(list(tools))
        self.settings.append(settings)
        result = self.reply(messages, tools)
        response = result if isinstance(result, ModelResponse) else ModelResponse(self.name, result)
        if response.tool_calls:
            response.stop_reason = "tool_calls"
        words = response.text.split(" ") if response.text else []
        if response.usage.total_tokens == 0:
            response.usage = Usage(self.count_tokens(messages, tools), len(words))
        for i, word in enumerate(words):
            yield StreamChunk(text=word if i == 0 else " " + word)
        yield StreamChunk(response=response)


def scripted(*replies: ModelResponse | str) -> Reply:
    """A reply function that returns the given replies in order, one per call."""
    queue = list(replies)

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse | str:
        if not queue:
            raise AssertionError("the fake model was called more often than scripted")
        return queue.pop(0)

    return reply
