"""Several calls in one reply, or none: the schema, its reading, and the real model under it."""

from __future__ import annotations

import json

import pytest

from milliwatt.models.base import GenerationSettings, Message, ToolSpec
from milliwatt.models.llamacpp import LlamaCppModel
from milliwatt.models.tool_prompt import calls_schema, read_calls

ADD = ToolSpec(
    "math.add",
    "Add two integers.",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
UNIT = ToolSpec(
    "convert",
    "Convert units.",
    {
        "type": "object",
        "properties": {"to": {"type": "string", "enum": ["km", "mi"]}},
        "required": ["to"],
    },
)
GUIDE = (
    "You call functions for the user. Functions:\n- math.add(a: integer, b: integer)\n"
    'Reply {"calls": [{"name": NAME, "arguments": {...}}]} with one call for each action '
    'the user asks for. Reply {"none": true} when no function can do what the user asks.'
)


def test_the_schema_holds_one_to_n_calls_of_the_offered_tools_or_none() -> None:
    schema = calls_schema([ADD, UNIT], max_calls=3)
    calls, none = schema["anyOf"]
    items = calls["properties"]["calls"]
    assert (items["minItems"], items["maxItems"]) == (1, 3)
    assert [b["properties"]["name"]["const"] for b in items["items"]["anyOf"]] == [
        "math.add",
        "convert",
    ]
    assert none["properties"]["none"] == {"const": True}
    only_calls = calls_schema([ADD], none=False)
    assert "anyOf" not in only_calls and only_calls["properties"]["calls"]["maxItems"] == 1
    with pytest.raises(ValueError, match="no tools"):
        calls_schema([])
    with pytest.raises(ValueError, match="max_calls"):
        calls_schema([ADD], max_calls=0)


def test_replies_are_read_as_calls_none_or_cut() -> None:
    reply = {"calls": [{"name": "math.add", "arguments": {"a": 1, "b": 2}}, {"name": "x"}]}
    assert read_calls(json.dumps(reply)) == [("math.add", {"a": 1, "b": 2}), ("x", {})]
    assert read_calls('{"none": true}') == []
    assert read_calls('{"calls": [{"name": "math.a') is None


def test_the_real_model_makes_parallel_calls_that_fit(bundled_model: LlamaCppModel) -> None:
    schema = calls_schema([ADD], max_calls=4, none=False)
    request = "Add 2 and 3, then add 10 and 20."
    response = bundled_model.complete(
        [Message("system", GUIDE), Message("user", request)],
        json_schema=schema,
        settings=GenerationSettings(max_tokens=120),
    )
    calls = read_calls(response.text)
    assert calls is not None and 1 <= len(calls) <= 4, response.text
    assert all(name == "math.add" and set(args) == {"a", "b"} for name, args in calls)
    assert all(isinstance(v, int) for _, args in calls for v in args.values())


def test_the_real_model_reports_the_log_probabilities_of_its_first_key(
    bundled_model: LlamaCppModel,
) -> None:
    """Read where the reply so far is '{"', before the grammar narrows the choice."""
    settings = GenerationSettings(max_tokens=4, score_words=("calls", "none"), score_after='{"')
    response = bundled_model.complete(
        [Message("system", GUIDE), Message("user", "Add 2 and 3.")],
        json_schema=calls_schema([ADD], none=True),
        settings=settings,
    )
    assert set(response.scores) == {"calls", "none"}
    assert all(v < 0 for v in response.scores.values())  # log-probabilities
    assert response.scores["calls"] != response.scores["none"]
    # a generation that did not ask reports nothing
    plain = bundled_model.complete(
        [Message("user", "Add 2 and 3.")], settings=GenerationSettings(max_tokens=2)
    )
    assert plain.scores == {}
