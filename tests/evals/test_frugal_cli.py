"""`milliwatt eval frugal` on a tiny slice, with the real router and the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from milliwatt.evals.frugal_cli import frugal

ROWS = [
    {"prompt": "convert 26.2 miles to km", "expected": "42.16", "route": "tool"},
    {"prompt": "what is 234 * 567?", "expected": "132678", "route": "tool"},
    {"prompt": "is 2024 a leap year", "expected": "leap", "route": "tool"},
    {"prompt": "write a haiku about rain", "expected": "", "route": "model"},
]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typer.Typer:
    from milliwatt.models.loader import bundled_model_path

    try:
        bundled_model_path()
    except FileNotFoundError as exc:
        pytest.skip(f"the bundled model is not installed: {exc}")
    monkeypatch.delenv("MILLIWATT_CONFIG", raising=False)
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no milliwatt.toml here
    app = typer.Typer()
    app.command()(frugal)
    app.command("unused")(lambda: None)  # two commands: frugal keeps its name
    return app


def workload(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_json_lines_per_row_then_totals(cli: typer.Typer, tmp_path: Path) -> None:
    args = [
        "frugal",
        "--data",
        str(workload(tmp_path, ROWS)),
        "--json",
        "--llm-rows",
        "1",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(cli, [*args, "--max-tokens", "8"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    pipeline = [r for r in lines if r.get("run") == "pipeline"]
    alone = [r for r in lines if r.get("run") == "llm_only"]
    assert [r["route"] for r in pipeline] == ["tool", "tool", "tool", "model"]
    assert all(r["correct"] for r in pipeline)
    assert [r["tokens"] for r in pipeline[:3]] == [0, 0, 0]
    assert pipeline[3]["tokens"] > 0 and pipeline[3]["answer"]
    assert len(alone) == 1 and alone[0]["prompt"] == ROWS[0]["prompt"]
    assert alone[0]["tokens"] > 0
    totals = lines[-1]["totals"]
    assert totals["total"] == 4 and totals["tool_share"] == 0.75
    assert totals["tool_precision"] == 1.0 and totals["tool_recall"] == 1.0
    assert totals["misroutes"] == 0
    assert totals["llm_only"]["rows"] == 1
    assert totals["energy_ratio_tool_answers"] > 1  # a tool answer costs less than a model's


def test_the_table_and_a_limit(cli: typer.Typer, tmp_path: Path) -> None:
    args = [
        "frugal",
        "--data",
        str(workload(tmp_path, ROWS)),
        "--limit",
        "2",
        "--llm-rows",
        "0",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "rows 2" in result.output and "answered by tools  100.0%" in result.output
    assert "LLM only" not in result.output


def test_bad_input_is_named(cli: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "route": "elsewhere"}\n')
    result = CliRunner().invoke(cli, ["frugal", "--data", str(bad)])
    assert result.exit_code != 0 and "bad.jsonl:1" in result.output and "route" in result.output
    missing = CliRunner().invoke(cli, ["frugal", "--data", str(tmp_path / "none.jsonl")])
    assert missing.exit_code != 0 and "none.jsonl" in missing.output
    unknown = CliRunner().invoke(cli, ["frugal", "--model", "gpt-99"])
    assert unknown.exit_code != 0 and "unknown model 'gpt-99'" in unknown.output


def test_routing_only_scores_the_router_without_a_model(cli: typer.Typer, tmp_path: Path) -> None:
    rows = [*ROWS, {"prompt": "what is 2 + 2", "expected": "5", "route": "tool"}]
    args = ["frugal", "--data", str(workload(tmp_path, rows)), "--routing-only", "--json"]
    result = CliRunner().invoke(cli, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [r["route"] for r in lines[:-1]] == ["tool", "tool", "tool", "model", "tool"]
    assert [r["correct"] for r in lines[:-1]] == [True, True, True, True, False]
    assert all(r["tokens"] == 0 for r in lines[:-1])
    totals = lines[-1]["totals"]
    assert totals["tool_precision"] == 0.75 and totals["wrong_tool_answers"] == 1
    assert totals["llm_only"]["rows"] == 0
