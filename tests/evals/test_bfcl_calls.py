"""The raw and pipeline call functions, with a scripted model and a deterministic embedder."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from milliwatt.evals.bfcl import BfclCase, run_bfcl
from milliwatt.evals.bfcl_ast import Call
from milliwatt.evals.bfcl_calls import make_call_fn, parse_calls, pipeline_call_fn, raw_call_fn
from milliwatt.evals.cli import app as eval_app
from milliwatt.models.base import (
    GenerationSettings,
    Message,
    ModelResponse,
    StreamChunk,
    ToolSpec,
    Usage,
)
from milliwatt.models.fake import FakeModel, Reply

BFCL = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "bfcl"

AREA = {
    "name": "geometry.triangle_area",
    "description": "Area of a triangle from its base and height.",
    "parameters": {
        "type": "dict",
        "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}},
        "required": ["base", "height"],
    },
}
BMI = {
    "name": "health.bmi",
    "description": "Body mass index from weight and height.",
    "parameters": {
        "type": "dict",
        "properties": {"weight": {"type": "float"}, "height": {"type": "float"}},
        "required": ["weight", "height"],
    },
}
QUESTION = [
    {"role": "user", "content": "What is the area of a triangle with base 10 and height 5?"}
]


def bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """A deterministic stand-in for sentence embeddings: hashed word counts, normalised."""
    rows = np.zeros((len(texts), 64))
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z]+", text.lower()):
            if len(word) > 3:
                rows[i, zlib.crc32(word.encode()) % 64] += 1  # hash() is salted per run
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


DEFAULT_SETTINGS = GenerationSettings()


class SchemaRecordingModel(FakeModel):
    """Also keeps the JSON schema each generation was constrained to."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply)
        self.schemas: list[dict[str, Any] | None] = []

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_SETTINGS,
    ) -> Iterator[StreamChunk]:
        self.schemas.append(json_schema)
        yield from super().stream(messages, tools=tools, json_schema=json_schema, settings=settings)


def test_parse_calls_reads_python_and_json() -> None:
    assert parse_calls('[math.hypot(x=4, y=5), f(s="a b", l=[1, 2.5], d={"k": True})]') == [
        Call("math.hypot", {"x": 4, "y": 5}),
        Call("f", {"s": "a b", "l": [1, 2.5], "d": {"k": True}}),
    ]
    assert parse_calls("Sure! ```python\narea(base=10, height=5)\n```") == [
        Call("area", {"base": 10, "height": 5})
    ]
    assert parse_calls('{"name": "area", "arguments": {"base": 10}}') == [
        Call("area", {"base": 10})
    ]
    assert parse_calls('[{"tool": "a", "arguments": {}}]') == [Call("a", {})]
    assert parse_calls("area(data=df['x'])") == [Call("area", {"data": "df['x']"})]
    assert parse_calls("None of the functions can answer this.") == []
    assert parse_calls("[area(10, height=") == []


def test_raw_mode_prompts_with_the_functions_and_parses_text() -> None:
    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        assert not tools  # raw: no constrained decoding
        assert '"geometry.triangle_area"' in messages[0].content
        return ModelResponse(
            "fake", "[geometry.triangle_area(base=10, height=5)]", usage=Usage(50, 9)
        )

    model = FakeModel(reply)
    attempt = raw_call_fn(model)(QUESTION, [AREA, BMI])
    assert attempt.calls == [Call("geometry.triangle_area", {"base": 10, "height": 5})]
    assert attempt.tokens == 59 and attempt.route == "fake:raw"


def test_pipeline_calls_the_closest_function_with_constrained_arguments() -> None:
    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        assert not tools and "geometry.triangle_area(base: integer" in messages[0].content
        return ModelResponse("fake", '{"base": 10, "height": 5}', usage=Usage(30, 8))

    model = SchemaRecordingModel(reply)
    attempt = pipeline_call_fn(model, bag_of_words)(QUESTION, [BMI, AREA])
    assert attempt.calls == [Call("geometry.triangle_area", {"base": 10, "height": 5})]
    assert attempt.tokens == 38 and attempt.route == "fake:constrained"
    assert model.schemas == [
        {
            "type": "object",
            "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}},
            "additionalProperties": False,
            "required": ["base", "height"],
        }
    ]


def test_pipeline_offers_only_required_parameters() -> None:
    area = {**AREA, "parameters": {**AREA["parameters"]}}
    area["parameters"]["properties"] = {
        **AREA["parameters"]["properties"],
        "unit": {"type": "string"},
    }  # type: ignore[index]
    seen: list[str] = []

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        seen.append(messages[0].content)
        return '{"base": 1, "height": 2'  # cut off by the token limit

    attempt = pipeline_call_fn(FakeModel(reply), bag_of_words)(QUESTION, [area])
    assert "unit" not in seen[0]
    assert attempt.calls == [] and attempt.route == "fake:cut"


def test_pipeline_abstains_without_a_close_function() -> None:
    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        raise AssertionError("the model must not be asked")

    unrelated = [{"role": "user", "content": "Who painted the Mona Lisa?"}]
    attempt = pipeline_call_fn(FakeModel(reply), bag_of_words)(unrelated, [AREA, BMI])
    assert attempt.calls == [] and attempt.route == "preselect:none" and attempt.tokens == 0


def test_pipeline_scores_through_the_runner() -> None:
    model = FakeModel(lambda m, t: '{"base": 10, "height": 5}')
    expected = [{"geometry.triangle_area": {"base": [10], "height": [5]}}]
    case = BfclCase("simple_x", "simple_python", QUESTION, [AREA], expected)
    report = run_bfcl([case], make_call_fn("pipeline", model, embed=bag_of_words))
    assert report.correct == 1 and report.results[0].route == "fake:constrained"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        make_call_fn("fast", FakeModel(lambda m, t: ""))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "simple_python", "--mode", "fast"], "use raw or pipeline"),
        (["--category", "live_simple"], "categories there"),
        (["--category", "simple_python", "--model", "nope"], "no model 'nope'"),
    ],
)
def test_eval_command_refuses_bad_options(args: list[str], message: str) -> None:
    if not BFCL.is_dir():
        pytest.skip(f"BFCL corpus not found at {BFCL}")
    result = CliRunner().invoke(eval_app, ["bfcl", "--data", str(BFCL), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())


def test_eval_command_needs_a_data_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    result = CliRunner().invoke(eval_app, ["bfcl", "--data", str(missing), "--category", "x"])
    assert result.exit_code == 2
    assert "is not a folder" in " ".join(result.output.replace("│", " ").split())


@pytest.mark.slow
def test_eval_command_runs_the_bundled_model(tmp_path: Path) -> None:
    """End to end with the real bundled model on two questions: the JSON contract."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    if not BFCL.is_dir():
        pytest.skip(f"BFCL corpus not found at {BFCL}")
    args = ["bfcl", "--data", str(BFCL), "--category", "simple_python", "--limit", "2"]
    result = CliRunner().invoke(eval_app, [*args, "--mode", "raw", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    rows, totals = lines[:-1], lines[-1]["totals"]
    assert [r["id"] for r in rows] == ["simple_python_0", "simple_python_1"]
    assert all({"id", "route", "calls", "tokens", "correct"} <= set(r) for r in rows)
    assert all(r["tokens"] > 0 for r in rows)
    assert totals["total"] == 2 and totals["correct"] == sum(r["correct"] for r in rows)
