"""The bundled SmolLM2-135M through llama.cpp: real weights, no mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milliwatt.models.base import ContextOverflowError, GenerationSettings, Message, ToolSpec
from milliwatt.models.llamacpp import LlamaCppModel

ADD = ToolSpec(
    "math.add",
    "Add two integers.",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


def test_context_length_is_per_conversation_and_within_the_models_own(
    bundled_model: LlamaCppModel,
) -> None:
    assert bundled_model.trained_context_length == 8192
    assert bundled_model.context_length == 2048  # the default, per sequence
    assert bundled_model.worker.info["context_length"] == 2048


def test_a_configured_context_beyond_the_trained_one_is_the_trained_one(
    bundled_model_path: Path,
) -> None:
    model = LlamaCppModel(bundled_model_path, context_length=100_000, parallel=1)
    try:
        assert model.context_length == 8192
    finally:
        model.close()


def test_answers_and_streams(bundled_model: LlamaCppModel) -> None:
    chunks = list(
        bundled_model.stream(
            [Message("user", "Say hello.")], settings=GenerationSettings(max_tokens=24)
        )
    )
    response = chunks[-1].response
    assert response is not None
    streamed = "".join(c.text for c in chunks[:-1])
    assert streamed == response.text and response.text.strip()
    assert len(chunks) > 2  # token by token, not one block
    assert response.usage.prompt_tokens == bundled_model.count_tokens(
        [Message("user", "Say hello.")]
    )
    assert 0 < response.usage.completion_tokens <= 24


def test_chat_template_is_applied(bundled_model: LlamaCppModel) -> None:
    with_system = bundled_model.count_tokens([Message("system", "x"), Message("user", "hi")])
    without = bundled_model.count_tokens([Message("user", "hi")])
    assert with_system != without  # the template adds its own default system turn otherwise


def test_json_schema_output_always_parses(bundled_model: LlamaCppModel) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    response = bundled_model.complete(
        [Message("user", "Give a city and its population as JSON.")],
        json_schema=schema,
        settings=GenerationSettings(max_tokens=60),
    )
    value = json.loads(response.text)
    assert isinstance(value["city"], str) and isinstance(value["population"], int)


def test_tool_choice_is_constrained_to_the_schema(bundled_model: LlamaCppModel) -> None:
    response = bundled_model.complete(
        [Message("user", "Use math.add to add 2 and 3.")],
        tools=[ADD],
        settings=GenerationSettings(max_tokens=60),
    )
    if response.tool_calls:  # a call must name a real tool with well-typed arguments
        (call,) = response.tool_calls
        assert call.name == "math.add"
        assert set(call.arguments) == {"a", "b"}
        assert all(isinstance(v, int) for v in call.arguments.values())
        assert response.stop_reason == "tool_calls"
    else:
        assert response.text  # or a plain answer, never broken JSON


def test_prompt_larger_than_the_context_is_refused(bundled_model: LlamaCppModel) -> None:
    huge = Message("user", "word " * 9000)
    with pytest.raises(ContextOverflowError, match="context holds 2048"):
        list(bundled_model.stream([huge]))
