"""Scoring the tool-first router: how often a tool answers, and how often it is right.

A workload is JSON lines {"prompt", "expected", "route"}: route "tool" rows carry the answer a
tool must give, route "model" rows (empty expected) must not be answered by a tool. Numbers
match within 1%; other expectations match by case-insensitive containment.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

Route = Literal["tool", "model"]
TOLERANCE = 0.01
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


class WorkloadError(ValueError):
    """A workload line is not a valid row; the message names the line."""


@dataclass(frozen=True)
class Row:
    prompt: str
    expected: str
    route: Route


@dataclass(frozen=True)
class Outcome:
    """What the system did with one prompt."""

    route: Route
    answer: str
    tool: str | None = None


@dataclass
class Miss:
    prompt: str
    expected: str
    wanted: Route
    got: Route
    answer: str
    tool: str | None


@dataclass
class Report:
    rows: int = 0
    tool_rows: int = 0
    tool_answers: int = 0  # rows a tool answered, of either kind
    correct_tool_answers: int = 0
    wrong_answers: list[Miss] = field(default_factory=list)  # a tool answered, wrongly
    missed: list[Miss] = field(default_factory=list)  # tool rows that went to the model
    intruded: list[Miss] = field(default_factory=list)  # model rows a tool answered

    @property
    def precision(self) -> float:
        return self.correct_tool_answers / self.tool_answers if self.tool_answers else 1.0

    @property
    def recall(self) -> float:
        return self.correct_tool_answers / self.tool_rows if self.tool_rows else 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(precision=self.precision, recall=self.recall)
        return data


def default_workload() -> Path:
    """The workload shipped with the package (src/milliwatt/evals/frugal.jsonl)."""
    return Path(str(resources.files("milliwatt.evals") / "frugal.jsonl"))


def load_rows(path: Path) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                rows.append(parse_row(line, f"{path}:{number}"))
    if not rows:
        raise WorkloadError(f"{path}: no rows")
    return rows


def parse_row(line: str, where: str) -> Row:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{where}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise WorkloadError(f"{where}: a row must be a JSON object")
    prompt, expected, route = data.get("prompt"), data.get("expected", ""), data.get("route")
    if not isinstance(prompt, str) or not prompt.strip():
        raise WorkloadError(f"{where}: 'prompt' must be a non-empty string")
    if route not in ("tool", "model"):
        raise WorkloadError(f'{where}: \'route\' must be "tool" or "model", got {route!r}')
    if not isinstance(expected, str | int | float) or isinstance(expected, bool):
        raise WorkloadError(f"{where}: 'expected' must be a string or a number")
    expected = str(expected)
    if route == "tool" and not expected.strip():
        raise WorkloadError(f"{where}: a tool row needs the expected answer")
    return Row(prompt, expected, route)


def answer_matches(expected: str, answer: str) -> bool:
    """True when a number in the answer is within 1% of an expected number, or when the
    answer contains the expected text (case-insensitive)."""
    target = expected.strip()
    if _NUMBER.fullmatch(target):
        want = float(target.replace(",", ""))
        return any(_close(float(found.replace(",", "")), want) for found in _NUMBER.findall(answer))
    return target.casefold() in answer.casefold()


def _close(got: float, want: float) -> bool:
    if want == 0:
        return abs(got) < 1e-9
    return math.isfinite(got) and abs(got - want) <= TOLERANCE * abs(want)


def score(rows: Iterable[Row], answer: Callable[[str], Outcome]) -> Report:
    report = Report()
    for row in rows:
        outcome = answer(row.prompt)
        report.rows += 1
        report.tool_rows += row.route == "tool"
        if outcome.route != "tool":
            if row.route == "tool":
                report.missed.append(_miss(row, outcome))
            continue
        report.tool_answers += 1
        if row.route == "model":
            report.intruded.append(_miss(row, outcome))
        elif answer_matches(row.expected, outcome.answer):
            report.correct_tool_answers += 1
        else:
            report.wrong_answers.append(_miss(row, outcome))
    return report


def _miss(row: Row, outcome: Outcome) -> Miss:
    return Miss(row.prompt, row.expected, row.route, outcome.route, outcome.answer, outcome.tool)
