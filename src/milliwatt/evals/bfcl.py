"""The Berkeley Function Calling Leaderboard (BFCL): load a category, run it, score it.

A category lives in DIR as `BFCL_v4_<category>.json` (one question per line) and
`possible_answer/BFCL_v4_<category>.json` (the allowed calls). The runner is model-agnostic:
it asks a call function for each question's calls and scores them with the AST rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milliwatt.evals.bfcl_ast import Call, Verdict, category_kind, check_calls
from milliwatt.models.base import ToolSpec

_PREFIX = "BFCL_v4_"
# BFCL's type names -> JSON schema types
_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "float": "number",
    "boolean": "boolean",
    "array": "array",
    "tuple": "array",
    "dict": "object",
    "object": "object",
}
_KEPT_KEYWORDS = ("description", "enum", "default", "format", "minimum", "maximum")


@dataclass(frozen=True)
class BfclCase:
    id: str
    category: str
    messages: list[dict[str, str]]  # the question: chat messages (role, content)
    functions: list[dict[str, Any]]  # BFCL function documentation, as in the data
    expected: list[dict[str, dict[str, list[Any]]]] | None  # None where no call is wanted


@dataclass(frozen=True)
class Attempt:
    """What a call function made of one question."""

    calls: list[Call]
    tokens: int = 0
    route: str = ""  # which path answered: a model name, "preselect", ...
    text: str = ""  # the raw output, kept for inspection


CallFn = Callable[[list[dict[str, str]], list[dict[str, Any]]], "Attempt | Sequence[Call]"]


@dataclass(frozen=True)
class BfclResult:
    id: str
    calls: list[Call]
    verdict: Verdict
    tokens: int = 0
    route: str = ""
    seconds: float = 0.0
    failure: str = ""  # the call function raised: its message

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "calls": [{c.name: c.arguments} for c in self.calls],
            "tokens": self.tokens,
            "correct": self.verdict.correct,
            "error": self.failure or self.verdict.error or None,
        }


@dataclass
class BfclReport:
    category: str
    results: list[BfclResult] = field(default_factory=list)

    @property
    def correct(self) -> int:
        return sum(r.verdict.correct for r in self.results)

    @property
    def accuracy(self) -> float:
        return self.correct / len(self.results) if self.results else 0.0

    def totals(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "total": len(self.results),
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "tokens": sum(r.tokens for r in self.results),
            "failures": sum(bool(r.failure) for r in self.results),
            "seconds": round(sum(r.seconds for r in self.results), 3),
        }


def categories(data_dir: Path) -> list[str]:
    """The categories whose question files are in DIR."""
    return sorted(p.stem.removeprefix(_PREFIX) for p in data_dir.glob(f"{_PREFIX}*.json"))


def load_category(data_dir: Path, category: str) -> list[BfclCase]:
    """The questions of one category with their possible answers, in file order."""
    questions = data_dir / f"{_PREFIX}{category}.json"
    if not questions.is_file():
        found = ", ".join(categories(data_dir)) or "none"
        raise FileNotFoundError(f"no {questions.name} in {data_dir} (categories there: {found})")
    kind = category_kind(category)
    answers: dict[str, Any] = {}
    if kind not in ("irrelevance", "relevance"):
        answer_file = data_dir / "possible_answer" / questions.name
        if not answer_file.is_file():
            raise FileNotFoundError(f"category {category!r} needs {answer_file}")
        answers = {row["id"]: row["ground_truth"] for row in _json_lines(answer_file)}
    cases = []
    for row in _json_lines(questions):
        turns = row.get("question")
        if not isinstance(turns, list) or len(turns) != 1:
            raise ValueError(f"{questions.name}: {row.get('id')}: expected one question turn")
        if kind not in ("irrelevance", "relevance") and row["id"] not in answers:
            raise ValueError(f"{row['id']}: no possible answer in possible_answer/")
        cases.append(
            BfclCase(row["id"], category, turns[0], row["function"], answers.get(row["id"]))
        )
    return cases


def tool_specs(functions: Sequence[Mapping[str, Any]]) -> list[ToolSpec]:
    """BFCL function documentation as tool specs with standard JSON schemas."""
    return [
        ToolSpec(f["name"], f.get("description", ""), to_json_schema(f["parameters"], f["name"]))
        for f in functions
    ]


def to_json_schema(doc: Mapping[str, Any], where: str = "parameters") -> dict[str, Any]:
    """Convert BFCL's type language ("dict", "float", "tuple", "any") to JSON schema.

    Objects with named properties take no others, so a constrained decoder cannot invent
    parameters; "any" becomes an unconstrained schema.
    """
    declared = doc.get("type", "any")
    schema: dict[str, Any] = {k: doc[k] for k in _KEPT_KEYWORDS if k in doc}
    if declared == "any":
        return schema
    if declared not in _JSON_TYPES:
        raise ValueError(f"{where}: unknown BFCL type {declared!r}")
    schema["type"] = _JSON_TYPES[declared]
    if schema["type"] == "array" and "items" in doc:
        schema["items"] = to_json_schema(doc["items"], f"{where}[]")
    if schema["type"] == "object":
        properties = doc.get("properties") or {}
        if properties:
            schema["properties"] = {
                name: to_json_schema(sub, f"{where}.{name}") for name, sub in properties.items()
            }
            schema["additionalProperties"] = False
        required = [r for r in doc.get("required", []) if r in properties]
        if required:
            schema["required"] = required
    return schema


def run_bfcl(
    cases: Sequence[BfclCase],
    call_fn: CallFn,
    *,
    on_result: Callable[[BfclResult], None] | None = None,
) -> BfclReport:
    """Ask call_fn for each question's calls and score them; a raising call_fn scores 0."""
    report = BfclReport(cases[0].category if cases else "")
    for case in cases:
        started = time.perf_counter()
        failure = ""
        try:
            attempt = _as_attempt(call_fn(case.messages, case.functions))
        except Exception as exc:  # one bad answer must not end the evaluation
            attempt, failure = Attempt([]), f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        if failure:
            verdict = Verdict(False, failure, "call_failed")
        else:
            verdict = check_calls(case.category, case.functions, attempt.calls, case.expected)
        result = BfclResult(
            case.id, attempt.calls, verdict, attempt.tokens, attempt.route, seconds, failure
        )
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report


def expected_calls(case: BfclCase) -> list[Call]:
    """A right answer: each parameter's first allowed value, left out where that is allowed."""
    required = {f["name"]: set(f["parameters"].get("required", [])) for f in case.functions}
    calls = []
    for answer in case.expected or []:
        for name, params in answer.items():
            calls.append(Call(name, _first_choices(params, required.get(name, set()))))
    return calls


def _first_choices(allowed: Mapping[str, Sequence[Any]], required: set[str]) -> dict[str, Any]:
    return {
        k: _materialise(next(x for x in v if x != ""))
        for k, v in allowed.items()
        if k in required or "" not in v
    }


def _materialise(value: Any) -> Any:
    """Allowed values nest: a dict answer maps each key to its own allowed values."""
    if isinstance(value, Mapping):
        return _first_choices(value, set())
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return [_first_choices(v, set()) for v in value]
    return value


def _as_attempt(value: Attempt | Sequence[Call]) -> Attempt:
    if isinstance(value, Attempt):
        return value
    calls = list(value)
    for call in calls:
        if not isinstance(call, Call):
            raise TypeError(f"a call function must return Call objects, got {type(call).__name__}")
    return Attempt(calls)


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise ValueError(f"{path.name} line {number}: expected an object with an id")
            yield row
