"""`milliwatt tools`: the commands run the real tools against a real data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import icalendar
import pytest
from typer.testing import CliRunner

from milliwatt.tools.cli import tools_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no milliwatt.toml from elsewhere
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(tools_app, list(args))
    return result.exit_code, result.output


def test_load_graph_then_route(env: Path) -> None:
    (env / "roads.csv").write_text("source,target,weight\nA,B,4\nA,C,1\nC,B,2\nB,D,5\n")
    code, out = run("load-graph", str(env / "roads.csv"), "--user", "ada")
    assert code == 0 and "4 nodes, 4 edges" in out
    code, out = run(
        "call", "graph.shortest_path", '{"source": "A", "target": "D"}', "--user", "ada"
    )
    assert code == 0
    assert json.loads(out)["path"] == ["A", "C", "B", "D"]
    code, _ = run("call", "graph.shortest_path", '{"source": "A", "target": "D"}', "--user", "bob")
    assert code == 1


def test_operators_may_load_a_graph_from_anywhere(
    env: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "roads.csv"
    elsewhere.write_text("A,B,1\n")
    code, out = run("load-graph", str(elsewhere), "--user", "ada")
    assert code == 0 and "2 nodes, 1 edges" in out


def test_call_errors(env: Path) -> None:
    code, out = run("call", "math.calculate", '{"expression": "9**9**9**9"}')
    assert code == 1 and "too large" in out
    assert run("call", "math.calculate", "not json")[0] != 0
    assert run("call", "no.such.tool", "{}")[0] != 0
    assert run("load-graph", str(env / "missing.csv"))[0] == 1


def test_export_calendar(env: Path) -> None:
    code, _ = run(
        "call",
        "calendar.book",
        '{"title": "Review", "start": "2026-03-02 10:00", "duration_minutes": 30}',
    )
    assert code == 0
    code, out = run("export-calendar")
    assert code == 0
    events = list(icalendar.Calendar.from_ical(out).walk("VEVENT"))
    assert [str(e["summary"]) for e in events] == ["Review"]


def test_list_and_the_installed_command(env: Path) -> None:
    code, out = run("list")
    assert code == 0 and "math.calculate" in out and "[writes]" in out
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "milliwatt.cli",
            "tools",
            "call",
            "units.convert",
            '{"value": 26.2, "from_unit": "miles", "to_unit": "km"}',
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["result"] == pytest.approx(42.1648128)
