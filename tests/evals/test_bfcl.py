"""BFCL loading, schema conversion and AST scoring, on hand-made cases and the real data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from milliwatt.evals.bfcl import (
    Attempt,
    BfclCase,
    categories,
    expected_calls,
    load_category,
    run_bfcl,
    to_json_schema,
    tool_specs,
)
from milliwatt.evals.bfcl_ast import Call, check_calls, normalise

BFCL = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "bfcl"

WEATHER = {
    "name": "weather.get",
    "description": "Weather for a city on a date.",
    "parameters": {
        "type": "dict",
        "properties": {
            "city": {"type": "string"},
            "date": {"type": "string"},
            "days": {"type": "integer"},
            "threshold": {"type": "float"},
            "metric": {"type": "boolean"},
            "stations": {"type": "array", "items": {"type": "string"}},
            "window": {"type": "tuple", "items": {"type": "integer"}},
        },
        "required": ["city"],
    },
}
EXPECTED = [
    {
        "weather.get": {
            "city": ["New York, NY", "NYC"],
            "date": ["April 1, 2024", ""],
            "days": [3, ""],
            "threshold": [2.5, ""],
            "metric": [True, ""],
            "stations": [["JFK", "La Guardia"], ""],
            "window": [[1, 2], ""],
        }
    }
]


def simple(**arguments: Any) -> bool:
    return check_calls("simple_python", [WEATHER], [Call("weather.get", arguments)], EXPECTED)


def test_strings_compare_after_bfcl_normalisation() -> None:
    assert normalise("April 1, 2024") == normalise("april 1 2024") == "april12024"
    assert simple(city="new york ny")
    assert simple(city="nyc", date="APRIL 1 2024")
    assert not simple(city="Boston")


def test_types_follow_bfcl() -> None:
    assert simple(city="NYC", threshold=2.5)
    assert not simple(city="NYC", threshold=3)  # int accepted for a float, but the value differs
    assert simple(city="NYC", days=3)
    assert not simple(city="NYC", days=3.0)  # a float is not an integer
    assert not simple(city="NYC", days="3")
    assert not simple(city="NYC", metric=1)  # nor is an int a boolean
    assert simple(city="NYC", metric=True)
    assert not simple(city="NYC", days=True)


def test_int_is_accepted_where_a_float_is_declared() -> None:
    expected = [{"weather.get": {"city": ["NYC"], "threshold": [2.0]}}]
    call = Call("weather.get", {"city": "NYC", "threshold": 2})
    assert check_calls("simple_python", [WEATHER], [call], expected)


def test_required_unknown_and_optional_parameters() -> None:
    assert not simple(date="April 1, 2024")  # city is required
    assert not simple(city="NYC", wind="strong")  # not documented
    doc = copy.deepcopy(WEATHER)
    doc["parameters"]["properties"]["unit"] = {"type": "string"}
    call = Call("weather.get", {"city": "NYC", "unit": "C"})
    assert not check_calls("simple_python", [doc], [call], EXPECTED)  # documented, not allowed
    needs_days = [{"weather.get": {"city": ["NYC"], "days": [3]}}]
    assert not check_calls(
        "simple_python", [WEATHER], [Call("weather.get", {"city": "NYC"})], needs_days
    )


def test_lists_compare_element_wise() -> None:
    assert simple(city="NYC", stations=["jfk", "la-guardia"])
    assert not simple(city="NYC", stations=["La Guardia", "JFK"])  # order matters in a list
    assert not simple(city="NYC", stations=["JFK"])
    assert simple(city="NYC", window=[1, 2])
    assert simple(city="NYC", window=(1, 2))
    assert not simple(city="NYC", window=["1", "2"])


def test_dict_and_list_of_dict_values() -> None:
    doc = {
        "name": "search",
        "parameters": {
            "type": "dict",
            "properties": {
                "budget": {"type": "dict"},
                "conditions": {"type": "array", "items": {"type": "dict"}},
            },
            "required": ["budget"],
        },
    }
    expected = [
        {
            "search": {
                "budget": [{"min": [300], "max": [400, ""]}],
                "conditions": [[{"field": ["age"], "op": [">"]}], ""],
            }
        }
    ]

    def ok(**arguments: Any) -> bool:
        return check_calls("multiple", [doc], [Call("search", arguments)], expected)

    assert ok(budget={"min": 300})
    assert ok(budget={"min": 300, "max": 400}, conditions=[{"field": "AGE", "op": ">"}])
    assert not ok(budget={"min": 300, "currency": "USD"})
    assert not ok(budget={"max": 400})
    assert not ok(budget={"min": 300}, conditions=[{"field": "age", "op": "<"}])


def test_wrong_name_and_wrong_count() -> None:
    assert not check_calls("simple_python", [WEATHER], [Call("weather", {"city": "NYC"})], EXPECTED)
    assert not check_calls("simple_python", [WEATHER], [], EXPECTED)
    twice = [Call("weather.get", {"city": "NYC"})] * 2
    verdict = check_calls("multiple", [WEATHER], twice, EXPECTED)
    assert not verdict and verdict.kind == "wrong_count"


def test_parallel_calls_match_in_any_order_one_to_one() -> None:
    expected = [
        {"weather.get": {"city": ["NYC"], "days": [1, 2]}},
        {"weather.get": {"city": ["NYC"], "days": [1]}},
    ]

    def ok(*days: int) -> bool:
        calls = [Call("weather.get", {"city": "NYC", "days": d}) for d in days]
        return bool(check_calls("parallel", [WEATHER], calls, expected))

    assert ok(1, 2)
    assert ok(2, 1)  # a greedy pairing would give days=1 to the first expected call and fail
    assert ok(1, 1)
    assert not ok(2, 2)  # the second expected call needs days=1
    assert not ok(1)


def test_irrelevance_passes_only_without_calls() -> None:
    assert check_calls("irrelevance", [WEATHER], [], None)
    assert not check_calls("irrelevance", [WEATHER], [Call("weather.get", {"city": "x"})], None)
    assert check_calls("live_relevance", [WEATHER], [Call("weather.get", {})], None)
    assert not check_calls("live_relevance", [WEATHER], [], None)


def test_unsupported_categories_are_named() -> None:
    with pytest.raises(ValueError, match="simple_java"):
        check_calls("simple_java", [WEATHER], [], EXPECTED)


def test_bfcl_types_become_json_schema() -> None:
    schema = to_json_schema(WEATHER["parameters"])
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["city"]
    props = schema["properties"]
    assert props["threshold"] == {"type": "number"}
    assert props["window"] == {"type": "array", "items": {"type": "integer"}}
    assert to_json_schema({"type": "any", "description": "x"}) == {"description": "x"}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"city": "NYC", "threshold": 2, "window": [1, 2]})
    assert not validator.is_valid({"city": "NYC", "wind": 3})
    assert not validator.is_valid({"days": 3})
    with pytest.raises(ValueError, match=r"parameters\.x: unknown BFCL type 'complex'"):
        to_json_schema({"type": "dict", "properties": {"x": {"type": "complex"}}})


def test_runner_scores_and_survives_a_failing_call_function() -> None:
    case = BfclCase("t_0", "simple_python", [{"role": "user", "content": "?"}], [WEATHER], EXPECTED)
    answers = iter(
        [
            Attempt([Call("weather.get", {"city": "NYC"})], tokens=7, route="fake"),
            [Call("weather.get", {"city": "Paris"})],
        ]
    )

    def call_fn(messages: list[dict[str, str]], functions: list[dict[str, Any]]) -> Any:
        assert messages[0]["content"] == "?" and functions == [WEATHER]
        answer = next(answers, None)
        if answer is None:
            raise RuntimeError("model unavailable")
        return answer

    report = run_bfcl([case, case, case], call_fn)
    assert [r.verdict.correct for r in report.results] == [True, False, False]
    assert report.results[2].failure == "RuntimeError: model unavailable"
    totals = report.totals()
    assert totals["correct"] == 1 and totals["total"] == 3 and totals["tokens"] == 7
    assert totals["failures"] == 1
    row = report.results[0].as_row()
    assert row["calls"] == [{"weather.get": {"city": "NYC"}}] and row["route"] == "fake"
    json.dumps(row)


# --- the real data ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bfcl_dir() -> Path:
    if not BFCL.is_dir():
        pytest.skip(f"BFCL corpus not found at {BFCL}")
    return BFCL


SCORED = ["simple_python", "multiple", "parallel", "parallel_multiple"]


def test_loading_names_what_is_missing(bfcl_dir: Path, tmp_path: Path) -> None:
    assert set(SCORED) | {"irrelevance"} <= set(categories(bfcl_dir))
    with pytest.raises(FileNotFoundError, match="categories there: irrelevance"):
        load_category(bfcl_dir, "live_simple")
    bad = tmp_path / "BFCL_v4_simple_python.json"
    bad.write_text('{"id": "a"\n')
    with pytest.raises(FileNotFoundError, match="possible_answer"):
        load_category(tmp_path, "simple_python")
    (tmp_path / "possible_answer").mkdir()
    (tmp_path / "possible_answer" / bad.name).write_text("")
    with pytest.raises(ValueError, match="line 1: not JSON"):
        load_category(tmp_path, "simple_python")


@pytest.mark.parametrize("category", SCORED)
def test_possible_answers_score_100_percent(bfcl_dir: Path, category: str) -> None:
    cases = load_category(bfcl_dir, category)
    assert len(cases) >= 200
    answers = {id(case.messages): expected_calls(case) for case in cases}
    report = run_bfcl(cases, lambda messages, functions: answers[id(messages)])
    wrong = [(r.id, r.verdict.error) for r in report.results if not r.verdict.correct]
    assert wrong == []


@pytest.mark.parametrize("category", ["parallel", "parallel_multiple"])
def test_parallel_answers_in_reverse_order_still_pass(bfcl_dir: Path, category: str) -> None:
    for case in load_category(bfcl_dir, category):
        calls = list(reversed(expected_calls(case)))
        assert check_calls(category, case.functions, calls, case.expected), case.id


def _corrupt(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7919
    if isinstance(value, str):
        return value + " zz-not-an-answer"
    if isinstance(value, list):
        return [*value, value[0] if value else "zz"]
    if isinstance(value, dict):
        return {**value, "zz_unknown_key": 1}
    raise AssertionError(value)


@pytest.mark.parametrize("category", SCORED)
def test_corrupted_answers_fail(bfcl_dir: Path, category: str) -> None:
    for case in load_category(bfcl_dir, category):
        right = expected_calls(case)
        first = right[0]
        name_changed = [Call(first.name + "_v2", first.arguments), *right[1:]]
        assert not check_calls(category, case.functions, name_changed, case.expected), case.id
        extra_param = [Call(first.name, {**first.arguments, "zz_extra": 1}), *right[1:]]
        assert not check_calls(category, case.functions, extra_param, case.expected), case.id
        assert not check_calls(category, case.functions, [*right, first], case.expected)
        for param, value in first.arguments.items():
            changed = [Call(first.name, {**first.arguments, param: _corrupt(value)}), *right[1:]]
            assert not check_calls(category, case.functions, changed, case.expected), (
                case.id,
                param,
            )
            dropped = {k: v for k, v in first.arguments.items() if k != param}
            doc = next(f for f in case.functions if f["name"] == first.name)
            if param in doc["parameters"].get("required", []):
                calls = [Call(first.name, dropped), *right[1:]]
                assert not check_calls(category, case.functions, calls, case.expected)


def test_irrelevance_real_data(bfcl_dir: Path) -> None:
    cases = load_category(bfcl_dir, "irrelevance")
    assert all(case.expected is None for case in cases)
    assert run_bfcl(cases, lambda m, f: []).accuracy == 1.0
    made_up = run_bfcl(cases, lambda m, f: [Call(f[0]["name"], {})])
    assert made_up.correct == 0


def test_ground_truth_fits_the_converted_schemas(bfcl_dir: Path) -> None:
    """What a constrained decoder may emit covers the right answers (BFCL's variables aside)."""
    for category in SCORED:
        for case in load_category(bfcl_dir, category):
            specs = {spec.name: spec for spec in tool_specs(case.functions)}
            for call in expected_calls(case):
                validator = jsonschema.Draft202012Validator(specs[call.name].parameters)
                for error in validator.iter_errors(call.arguments):
                    # allowed values like "data['sales']" name a variable, not a value
                    assert isinstance(error.instance, str) and error.validator == "type", (
                        case.id,
                        error.message,
                    )
