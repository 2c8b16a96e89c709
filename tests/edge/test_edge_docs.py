"""docs/edge.md's example of `milliwatt edge plan` runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_placement_planner_example_runs(tmp_path: Path) -> None:
    text = (REPO / "docs" / "edge.md").read_text()
    section = text[text.index("## Placement planner") :]
    example = re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)[0]
    # `milliwatt` as this checkout's: the same command whether installed or not
    script = f'milliwatt() {{ "{sys.executable}" -m milliwatt.cli "$@"; }}\nset -e\n{example}'
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    run = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    table, _, answer = run.stdout.partition("\n{")
    assert "3 sites for 5 user cities" in table
    plan = json.loads("{" + answer)
    assert len(plan["sites"]) == 3 and len(plan["per_user"]) == 5
    new_york = next(u for u in plan["per_user"] if u["city"] == "New York")
    assert new_york["rtt_ms"] == 1.2  # measured, from rtt.csv
