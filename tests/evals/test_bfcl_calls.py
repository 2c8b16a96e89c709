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

from milliwatt.agent.relevance import RelevanceJudge
from milliwatt.evals.bfcl import BfclCase, run_bfcl
from milliwatt.evals.bfcl_ast import Call
from milliwatt.evals.bfcl_calls import make_call_fn, parse_calls, raw_call_fn
from milliwatt.evals.bfcl_pipeline import pipeline_call_fn, plain_call_fn
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


def calls_reply(*calls: tuple[str, dict[str, Any]]) -> str:
    return json.dumps({"calls": [{"name": n, "arguments": a} for n, a in calls]})


def test_pipeline_calls_the_closest_function_under_the_calls_grammar() -> None:
    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        assert not tools and "geometry.triangle_area(base: integer" in messages[0].content
        text = calls_reply(("geometry.triangle_area", {"base": 10, "height": 5}))
        return ModelResponse("fake", text, usage=Usage(30, 8))

    model = SchemaRecordingModel(reply)
    sure = RelevanceJudge(bag_of_words, call_margin=-1.0, decline_margin=-1.0, decline_below=None)
    attempt = pipeline_call_fn(model, bag_of_words, sure)(QUESTION, [BMI, AREA])
    assert attempt.calls == [Call("geometry.triangle_area", {"base": 10, "height": 5})]
    assert attempt.tokens == 38 and attempt.route == "fake:call"
    schema = model.schemas[0]
    assert schema is not None and "none" not in json.dumps(schema)  # sure: no none option
    assert schema["properties"]["calls"]["maxItems"] == 4


def test_pipeline_offers_optional_parameters_only_when_named_and_drops_unsaid_values() -> None:
    area = {**AREA, "parameters": {**AREA["parameters"]}}
    area["parameters"]["properties"] = {
        **AREA["parameters"]["properties"],
        "unit": {"type": "string"},
        "precision": {"type": "integer"},
    }  # type: ignore[index]
    seen: list[str] = []

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        seen.append(messages[0].content)
        arguments = {"base": 10, "height": 5, "precision": 3}
        return calls_reply(("geometry.triangle_area", arguments))

    sure = RelevanceJudge(bag_of_words, call_margin=-1.0, decline_margin=-1.0, decline_below=None)
    question = [{"role": "user", "content": QUESTION[0]["content"] + " Round to 2 precision."}]
    attempt = pipeline_call_fn(FakeModel(reply), bag_of_words, sure)(question, [area])
    assert "unit" not in seen[0] and "precision?: integer" in seen[0]
    # 3 is not in the request: the model's habit, not the user's value
    assert attempt.calls == [Call("geometry.triangle_area", {"base": 10, "height": 5})]


def test_pipeline_reports_a_reply_cut_off_by_the_token_limit() -> None:
    model = FakeModel(lambda m, t: '{"calls": [{"name": "geometry.triangle_area", "argu')
    sure = RelevanceJudge(bag_of_words, call_margin=-1.0, decline_margin=-1.0, decline_below=None)
    attempt = pipeline_call_fn(model, bag_of_words, sure)(QUESTION, [AREA])
    assert attempt.calls == [] and attempt.route == "fake:call:cut"


def test_pipeline_declines_a_clear_miss_without_the_model() -> None:
    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        raise AssertionError("the model must not be asked")

    strict = RelevanceJudge(bag_of_words, call_margin=2.0, decline_margin=2.0)
    unrelated = [{"role": "user", "content": "Who painted the Mona Lisa?"}]
    attempt = pipeline_call_fn(FakeModel(reply), bag_of_words, strict)(unrelated, [AREA, BMI])
    assert attempt.calls == [] and attempt.route.startswith("relevance:decline")
    assert attempt.tokens == 0


class ScoringModel(FakeModel):
    """Reports a fixed preference for "calls" over "none", as llama.cpp does when asked."""

    def __init__(self, reply: Reply, preference: float) -> None:
        super().__init__(reply)
        self.preference = preference

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        settings: GenerationSettings = DEFAULT_SETTINGS,
    ) -> Iterator[StreamChunk]:
        for chunk in super().stream(
            messages, tools=tools, json_schema=json_schema, settings=settings
        ):
            if chunk.response is not None and settings.score_words:
                chunk.response.scores = {"calls": self.preference, "none": 0.0}
            yield chunk


@pytest.mark.parametrize(
    ("preference", "greedy", "expected", "generations"),
    [
        (1.5, '{"none": true}', 1, 2),  # greedy said none; the bias says call: asked again
        (-1.5, None, 0, 1),  # the model prefers none: no call, whatever greedy wrote
        (0.5, None, 1, 1),
    ],
)
def test_pipeline_asks_the_model_in_the_unsure_zone(
    preference: float, greedy: str | None, expected: int, generations: int
) -> None:
    call = calls_reply(("geometry.triangle_area", {"base": 10, "height": 5}))
    replies = iter([greedy or call, call])
    model = ScoringModel(lambda m, t: next(replies), preference)
    unsure = RelevanceJudge(bag_of_words, call_margin=2.0, decline_margin=-2.0)
    attempt = pipeline_call_fn(model, bag_of_words, unsure, call_bias=0.0)(QUESTION, [AREA])
    assert len(attempt.calls) == expected and len(model.calls) == generations
    assert f"ask({preference:+.2f})" in attempt.route
    assert "none" in json.dumps(model.settings[0].score_words)


def test_pipeline_without_a_bias_calls_in_the_unsure_zone_without_a_none_option() -> None:
    call = calls_reply(("geometry.triangle_area", {"base": 10, "height": 5}))
    model = SchemaRecordingModel(lambda m, t: call)
    unsure = RelevanceJudge(bag_of_words, call_margin=2.0, decline_margin=-2.0)
    attempt = pipeline_call_fn(model, bag_of_words, unsure)(QUESTION, [AREA])
    assert len(attempt.calls) == 1 and attempt.route == "fake:ask"
    assert "none" not in json.dumps(model.schemas[0]) and not model.settings[0].score_words


def test_plain_mode_offers_every_function_and_always_calls() -> None:
    call = calls_reply(("health.bmi", {"weight": 70, "height": 1.8}))
    model = SchemaRecordingModel(lambda m, t: call)
    attempt = plain_call_fn(model)(QUESTION, [AREA, BMI])
    assert attempt.calls == [Call("health.bmi", {"weight": 70, "height": 1.8})]
    assert attempt.route == "fake:plain"
    assert "geometry.triangle_area" in model.calls[0][0].content
    assert "health.bmi" in model.calls[0][0].content
    schema = model.schemas[0]
    assert schema is not None and "none" not in json.dumps(schema)
    assert len(schema["properties"]["calls"]["items"]["anyOf"]) == 2


def test_pipeline_makes_parallel_calls_and_drops_repeats() -> None:
    text = calls_reply(
        ("geometry.triangle_area", {"base": 10, "height": 5}),
        ("geometry.triangle_area", {"base": 3, "height": 4}),
        ("geometry.triangle_area", {"base": 3, "height": 4}),
    )
    sure = RelevanceJudge(bag_of_words, call_margin=-1.0, decline_margin=-1.0, decline_below=None)
    question = [{"role": "user", "content": "Areas of triangles 10 by 5 and 3 by 4?"}]
    attempt = pipeline_call_fn(FakeModel(lambda m, t: text), bag_of_words, sure)(question, [AREA])
    assert attempt.calls == [
        Call("geometry.triangle_area", {"base": 10, "height": 5}),
        Call("geometry.triangle_area", {"base": 3, "height": 4}),
    ]


def test_pipeline_scores_through_the_runner() -> None:
    model = FakeModel(
        lambda m, t: calls_reply(("geometry.triangle_area", {"base": 10, "height": 5}))
    )
    expected = [{"geometry.triangle_area": {"base": [10], "height": [5]}}]
    case = BfclCase("simple_x", "simple_python", QUESTION, [AREA], expected)
    sure = RelevanceJudge(bag_of_words, call_margin=-1.0, decline_margin=-1.0, decline_below=None)
    report = run_bfcl([case], pipeline_call_fn(model, bag_of_words, sure))
    assert report.correct == 1 and report.results[0].route == "fake:call"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        make_call_fn("fast", FakeModel(lambda m, t: ""))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "simple_python", "--mode", "fast"], "use raw, plain or pipeline"),
        (["--category", "live_simple"], "categories there"),
        (["--category", "simple_python", "--model", "nope"], "no model 'nope'"),
        (["--category", "simple_python", "--split", "both"], "use heldout, tuning or all"),
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
    args = ["bfcl", "--data", str(BFCL), "--category", "simple_python", "--split", "all"]
    args += ["--limit", "2"]
    result = CliRunner().invoke(eval_app, [*args, "--mode", "raw", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    rows, totals = lines[:-1], lines[-1]["totals"]
    assert [r["id"] for r in rows] == ["simple_python_0", "simple_python_1"]
    assert all({"id", "route", "calls", "tokens", "correct"} <= set(r) for r in rows)
    assert all(r["tokens"] > 0 for r in rows)
    assert totals["total"] == 2 and totals["correct"] == sum(r["correct"] for r in rows)


@pytest.mark.slow
def test_eval_command_runs_the_pipeline_on_a_split_sample() -> None:
    """The bundled model through the pipeline on 4 terse irrelevance questions."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    terse = Path(__file__).resolve().parents[2] / "src" / "milliwatt" / "evals" / "bfcl_terse"
    args = ["bfcl", "--data", str(terse), "--category", "terse_irrelevance", "--split", "all"]
    result = CliRunner().invoke(eval_app, [*args, "--sample", "4", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    rows, totals = lines[:-1], lines[-1]["totals"]
    assert len(rows) == 4 and totals["split"] == "all" and totals["mode"] == "pipeline"
    declined = [r for r in rows if r["route"].startswith("relevance:decline")]
    assert all(r["tokens"] == 0 and r["correct"] for r in declined)
    assert totals["correct"] == sum(r["correct"] for r in rows)
