"""Scoring of the frugal workload: matching rules, precision and recall, row validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from milliwatt.evals.frugal import (
    Outcome,
    Row,
    WorkloadError,
    answer_matches,
    default_workload,
    load_rows,
    score,
)


@pytest.mark.parametrize(
    ("expected", "answer", "matches"),
    [
        ("42.16", "26.2 miles = 42.1648128 kilometers", True),
        ("42.16", "about 42.5 km", True),  # within 1%
        ("42.16", "about 43 km", False),
        ("132678", "234 * 567 = 132,678", True),
        ("0", "0 — 'q' occurs 0 times", True),
        ("0", "1 time", False),
        ("-5", "-5 + 3 ... no: -5", True),
        ("3", "There are three", False),  # numbers must be written as numbers
        ("Thursday", "thursday, July 4, 1776.", True),
        ("2026-05-30", "Saturday, May 30, 2026 (2026-05-30).", True),
        ("not a prime number", "Yes, 97 is a prime number.", False),
        ("ff", "255 in base 10 is FF in base 16.", True),
    ],
)
def test_answer_matching(expected: str, answer: str, matches: bool) -> None:
    assert answer_matches(expected, answer) is matches


def test_score_counts_each_kind_of_miss() -> None:
    rows = [
        Row("2+2", "4", "tool"),  # right
        Row("3+3", "6", "tool"),  # wrong value
        Row("4+4", "8", "tool"),  # sent to the model
        Row("hello", "", "model"),  # correctly left to the model
        Row("a story about 3 apples", "", "model"),  # a tool intruded
    ]
    answers = {"2+2": "4", "3+3": "7", "a story about 3 apples": "3"}

    def answer(prompt: str) -> Outcome:
        if prompt in answers:
            return Outcome("tool", answers[prompt], "math.calculate")
        return Outcome("model", "a model answer")

    report = score(rows, answer)
    assert (report.rows, report.tool_rows, report.tool_answers) == (5, 3, 3)
    assert report.correct_tool_answers == 1
    assert report.precision == pytest.approx(1 / 3)
    assert report.recall == pytest.approx(1 / 3)
    assert [m.prompt for m in report.wrong_answers] == ["3+3"]
    assert [m.prompt for m in report.missed] == ["4+4"]
    assert [m.prompt for m in report.intruded] == ["a story about 3 apples"]
    assert report.to_dict()["precision"] == pytest.approx(1 / 3)


def test_empty_report_is_not_a_division_by_zero() -> None:
    report = score([], lambda p: Outcome("model", ""))
    assert (report.precision, report.recall) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{", "invalid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"expected": "1", "route": "tool"}', "'prompt' must be"),
        ('{"prompt": "x", "expected": "1", "route": "llm"}', "'route' must be"),
        ('{"prompt": "x", "expected": "", "route": "tool"}', "needs the expected answer"),
        ('{"prompt": "x", "expected": true, "route": "tool"}', "'expected' must be"),
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"prompt": "ok", "expected": "", "route": "model"}\n' + line + "\n")
    with pytest.raises(WorkloadError) as caught:
        load_rows(path)
    assert f"{path}:2" in str(caught.value) and reason in str(caught.value)


def test_empty_workload_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text("\n")
    with pytest.raises(WorkloadError, match="no rows"):
        load_rows(path)


def test_numbers_as_expected_values_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"prompt": "2+2", "expected": 4, "route": "tool"}) + "\n")
    assert load_rows(path) == [Row("2+2", "4", "tool")]


def test_shipped_workload_is_well_formed() -> None:
    rows = load_rows(default_workload())
    assert len(rows) >= 300
    assert len({r.prompt for r in rows}) == len(rows), "duplicate prompts"
    assert sum(r.route == "model" for r in rows) >= 80


def test_the_shipped_workload_is_what_the_script_builds(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    gsm8k = repo / ".." / "shared" / "corpora" / "gsm8k" / "test.jsonl"
    if not gsm8k.is_file():
        pytest.skip(f"GSM8K not found at {gsm8k}")
    rebuilt = tmp_path / "frugal.jsonl"
    subprocess.run(
        [
            sys.executable,
            str(repo / "scripts" / "make_frugal_workload.py"),
            "--gsm8k",
            str(gsm8k),
            "--output",
            str(rebuilt),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert rebuilt.read_text(encoding="utf-8") == default_workload().read_text(encoding="utf-8")
