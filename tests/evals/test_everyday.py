"""The everyday prompt set: its two halves, the per-row checks, and a sample on the real model."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from milliwatt.evals.everyday import (
    EverydayError,
    Row,
    Turn,
    check,
    default_prompts,
    expected_text,
    load_rows,
)
from milliwatt.evals.everyday_cli import everyday

TODAY = date(2026, 12, 6)


def turn(answer: str = "Hello!", **changes: object) -> Turn:
    base: dict[str, object] = {
        "answer": answer,
        "stop": "answer",
        "route": "model",
        "tools": (),
        "completion_tokens": 5,
        "seconds": 0.5,
    }
    return Turn(**{**base, **changes})  # type: ignore[arg-type]


def test_the_built_in_set_has_every_category_in_both_halves() -> None:
    rows = load_rows(default_prompts())
    assert len(rows) == 80 and len({r.id for r in rows}) == 80
    halves = Counter((r.split, r.category) for r in rows)
    categories = {r.category for r in rows}
    assert categories == {"chitchat", "writing", "facts", "arithmetic", "dates", "text"}
    for category in categories:
        assert halves["tuning", category] == halves["held_out", category] > 0
    for row in rows:
        assert row.route != "tool" or row.tool, row.id


def test_a_row_fails_for_each_way_of_not_answering() -> None:
    chat = Row("c", "chitchat", "tuning", "Hi!", no_tools=True)
    assert check(chat, turn(), today=TODAY).passed
    failures = {
        "stopped: steps": turn("Stopped after 6 steps without a final answer.", stop="steps"),
        "empty answer": turn("  "),
        "no real answer": turn("I don't have an answer to that (m gave an empty reply)."),
        "300 tokens > 200": turn(completion_tokens=300),
        "31.0 s > 30 s": turn(seconds=31.0),
        "called text.stats": turn(tools=("text.stats",)),
    }
    for reason, done in failures.items():
        assert reason in check(chat, done, today=TODAY).failures


def test_a_tool_row_needs_the_tool_and_the_value() -> None:
    row = Row(
        "d",
        "dates",
        "held_out",
        "How many days until Christmas?",
        route="tool",
        tool="dates.difference",
        contains=("{days_to:12-25}",),
    )
    right = turn("There are 19 days ...", route="tool", tools=("dates.difference",))
    assert check(row, right, today=TODAY).passed
    assert not check(row, turn("There are 19 days ..."), today=TODAY).passed  # by the model
    wrong = turn("There are 20 days ...", route="tool", tools=("dates.difference",))
    assert check(row, wrong, today=TODAY).failures == ["answer lacks '19'"]
    assert expected_text("{days_to:12-25}", date(2026, 12, 26)) == "364"
    assert expected_text("{days_to:12-25}", date(2026, 12, 25)) == "0"


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a", "category": "x", "split": "both", "prompt": "hi"}\n')
    with pytest.raises(EverydayError, match=r"rows.jsonl:1: split must be"):
        load_rows(path)


# one row of each category, the three from the first-run report among them
SAMPLE = [
    "chitchat-02",  # Say hello in one short sentence.
    "chitchat-04",  # Tell me a joke.
    "writing-03",  # Write one sentence describing a sunset.
    "facts-01",
    "arithmetic-01",
    "dates-01",  # How many days until Christmas?
    "text-07",  # Reverse the word "hello".
]


@pytest.mark.slow
def test_the_bundled_model_answers_a_sample_of_everyday_requests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from milliwatt.models.loader import bundled_model_path

    try:
        bundled_model_path()
    except FileNotFoundError as exc:
        pytest.skip(f"the bundled model is not installed: {exc}")
    lines = default_prompts().read_text(encoding="utf-8").splitlines()
    chosen = [line for line in lines if line.strip() and json.loads(line)["id"] in SAMPLE]
    data = tmp_path / "sample.jsonl"
    data.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    rows = load_rows(data)
    monkeypatch.delenv("MILLIWATT_CONFIG", raising=False)
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no milliwatt.toml here
    app = typer.Typer()
    app.command()(everyday)
    app.command("unused")(lambda: None)  # two commands: everyday keeps its name
    args = ["everyday", "--data", str(data), "--split", "all", "--json", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    verdicts = [json.loads(line) for line in lines[:-2]]
    totals = json.loads(lines[-2])["totals"]
    assert [v["id"] for v in verdicts] == [r.id for r in rows]
    assert totals["step_stops"] == 0 and totals["empty_answers"] == 0
    for verdict in verdicts:
        assert verdict["stop"] == "answer" and verdict["answer"].strip(), verdict
        assert verdict["completion_tokens"] <= 256, verdict  # no runaway generation
    assert lines[-1].startswith("split=all models=smollm2-135m rows=7 ")
