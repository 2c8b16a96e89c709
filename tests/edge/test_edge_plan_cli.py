"""`milliwatt edge plan` through the real command: its JSON, measured RTTs, and bad input
(one line on stderr naming the file and line, exit 1)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from milliwatt.edge.placement import Objective
from milliwatt.edge.plan import load_inputs, make_plan

REPO = Path(__file__).resolve().parents[2]

USERS = """city,lat,lon,weight
London,51.5,-0.1,9
Paris,48.9,2.4,11
New York,40.7,-74.0,19
Boston,42.4,-71.1,4
"""
SITES = """site,lat,lon
Frankfurt,50.1,8.7
Amsterdam,52.4,4.9
Ashburn,39.0,-77.5
Newark,40.7,-74.2
"""


def milliwatt(*args: str) -> subprocess.CompletedProcess[str]:
    src = str(REPO / "src")
    env = os.environ | {"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "milliwatt.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "users.csv").write_text(USERS)
    (tmp_path / "sites.csv").write_text(SITES)
    return {"users": tmp_path / "users.csv", "sites": tmp_path / "sites.csv", "dir": tmp_path}


def plan(files: dict[str, Path], *extra: str) -> dict[str, object]:
    run = milliwatt(
        "edge", "plan", "--users", str(files["users"]), "--sites", str(files["sites"]), *extra
    )
    assert run.returncode == 0, run.stderr
    answer: dict[str, object] = json.loads(run.stdout)
    return answer


def test_json_answer_names_sites_and_serves_every_user(files: dict[str, Path]) -> None:
    answer = plan(files, "--k", "2", "--json")
    assert set(answer) >= {"sites", "median_rtt_ms", "p90_rtt_ms", "per_user"}
    assert sorted(answer["sites"]) == ["Amsterdam", "Newark"]  # type: ignore[arg-type]
    per_user = answer["per_user"]
    assert isinstance(per_user, list)
    assert [(u["city"], u["site"], u["weight"]) for u in per_user] == [
        ("London", "Amsterdam", 9),
        ("Paris", "Amsterdam", 11),
        ("New York", "Newark", 19),
        ("Boston", "Newark", 4),
    ]
    assert per_user[2]["rtt_ms"] < 1 < per_user[3]["rtt_ms"] < 10
    # by RTT: New York (weight 19 of 43), Boston (4): half the weight is within Boston's RTT
    rtts = {u["city"]: u["rtt_ms"] for u in per_user}
    assert rtts["New York"] < rtts["Boston"] < rtts["London"] < rtts["Paris"]
    assert answer["median_rtt_ms"] == rtts["Boston"]
    assert answer["p90_rtt_ms"] == max(rtts.values())


def test_measured_rtts_override_the_model_in_either_direction(files: dict[str, Path]) -> None:
    rtt = files["dir"] / "rtt.csv"
    # Newark's peering is poor; Boston reaches Ashburn well (given site first)
    rtt.write_text("src,dst,rtt_ms\nNew York,Newark,40\nAshburn,Boston,2.5\nNewark,Ashburn,9\n")
    answer = plan(files, "--k", "2", "--rtt", str(rtt), "--json")
    assert sorted(answer["sites"]) == ["Amsterdam", "Ashburn"]  # type: ignore[arg-type]
    served = {u["city"]: (u["site"], u["rtt_ms"]) for u in answer["per_user"]}  # type: ignore[attr-defined]
    assert served["Boston"] == ("Ashburn", 2.5)
    assert served["New York"][0] == "Ashburn" and 5 < served["New York"][1] < 40


def test_table_without_json(files: dict[str, Path]) -> None:
    run = milliwatt(
        "edge", "plan", "--users", str(files["users"]), "--sites", str(files["sites"]), "--k", "1"
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["site", "users", "weight", "median", "ms", "max", "ms"]
    assert lines[1].split()[:3] == ["Newark", "4", "100.0%"]
    assert lines[-1].startswith("1 sites for 4 user cities (objective: mean)")


@pytest.mark.parametrize(
    ("file", "content", "args", "message"),
    [
        (
            "rtt.csv",
            "src,dst,rtt_ms\nLondon,Amsterdam,3\nNowhere,Newark,1\n",
            ["--k", "2"],
            "rtt.csv:3: 'Nowhere' is neither a user city nor a candidate site",
        ),
        (
            "rtt.csv",
            "src,dst,rtt_ms\nLondon,Amsterdam,fast\n",
            ["--k", "2"],
            "rtt.csv:2: rtt_ms 'fast' is not a number",
        ),
        (
            "rtt.csv",
            "src,dst,rtt_ms\nLondon,Amsterdam,3\n\nAmsterdam,London,4\n",
            ["--k", "2"],
            "rtt.csv:4: Amsterdam - London repeats line 2",
        ),
        ("rtt.csv", "src,dst,rtt_ms\n", ["--k", "2"], "rtt.csv: no measurements"),
        (
            "sites.csv",
            SITES + "Amsterdam,52.3,4.8\n",
            ["--k", "2"],
            "sites.csv:6: site 'Amsterdam' repeats line 3",
        ),
        ("sites.csv", "site,lat,lon\n", ["--k", "1"], "sites.csv: no candidate sites"),
        ("users.csv", "", ["--k", "1"], "users.csv: empty file"),
        (
            "users.csv",
            "city,lat,lon\nLondon,51.5,-0.1\n",
            ["--k", "1"],
            "users.csv: missing column(s) weight",
        ),
        (
            "users.csv",
            "city,lat,lon,weight\nLondon,95,0,1\n",
            ["--k", "1"],
            "users.csv:2: lat 95.0 is outside [-90, 90]",
        ),
        (
            "users.csv",
            "city,lat,lon,weight\nLondon,51.5,-0.1,1\nParis,48.9,2.4,inf\n",
            ["--k", "1"],
            "users.csv:3: weight 'inf' is not a finite number",
        ),
        (
            "users.csv",
            "city,lat,lon,weight\nLondon,51.5,-0.1,0\n",
            ["--k", "1"],
            "users.csv: every weight is 0",
        ),
        (None, None, ["--k", "5"], "--k 5 is more than the 4 candidate sites in"),
        (None, None, ["--k", "0"], "--k 0: choose at least 1 site"),
    ],
)
def test_bad_input_is_one_line_naming_file_and_line(
    files: dict[str, Path], file: str | None, content: str | None, args: list[str], message: str
) -> None:
    extra = list(args)
    if file is not None and content is not None:
        (files["dir"] / file).write_text(content)
        if file == "rtt.csv":
            extra += ["--rtt", str(files["dir"] / file)]
    run = milliwatt(
        "edge", "plan", "--users", str(files["users"]), "--sites", str(files["sites"]), *extra
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1
    assert message in run.stderr
    if "--k 0" not in message:  # the file at fault, by its path
        assert str(files["dir"]) in run.stderr


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("edge_plan", REPO / "bench" / "edge_plan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_world_cities_beat_the_most_populous_choice(
    corpora: Path, bench: ModuleType, tmp_path: Path
) -> None:
    users, sites = bench.write_city_csvs(corpora / "cities" / "cities.csv", tmp_path)
    inputs = load_inputs(users, sites, None)
    assert len(inputs.users) == len(inputs.sites) == 3060  # names made unique, none dropped
    chosen = make_plan(inputs, 10, Objective.mean, sites)
    assert len(set(chosen.sites)) == 10
    populous = sorted(range(3060), key=lambda j: -inputs.users[j].weight)[:10]
    _, naive_p90 = bench.figures(inputs, populous)
    assert chosen.p90_rtt_ms < naive_p90
    index = {site.name: j for j, site in enumerate(inputs.sites)}
    assert bench.figures(inputs, [index[s] for s in chosen.sites]) == (
        chosen.median_rtt_ms,
        chosen.p90_rtt_ms,
    )
