"""`milliwatt doctor --json`: one JSON object saying what this installation runs."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from milliwatt.doctor import cpu_features

SRC = Path(__file__).resolve().parents[1] / "src"


def _doctor(cwd: Path) -> dict:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLIWATT_")}
    env |= {"PYTHONPATH": str(SRC), "MILLIWATT_DATA_DIR": str(cwd / "data")}
    out = subprocess.run(
        [sys.executable, "-m", "milliwatt.cli", "doctor", "--json"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.slow
def test_doctor_with_no_configuration_reports_crs_and_llama_cpp(tmp_path: Path) -> None:
    report = _doctor(tmp_path)
    waf = report["waf"]
    assert waf["rules"] == "crs"
    assert waf["crs_version"].startswith("4.")
    assert waf["rule_count"] > 500
    llama = report["llama_cpp"]
    assert llama["version"] == importlib.metadata.version("llama-cpp-python")
    assert llama["cpu_features"] and all(isinstance(f, str) for f in llama["cpu_features"])
    assert report["models"]["smollm2-135m"]["grammar_output"] == "works"
    assert report["sandbox"] == {"bwrap": shutil.which("bwrap"), "seccomp": "on", "works": True}


@pytest.mark.slow
def test_doctor_reports_the_baseline_when_chosen(tmp_path: Path) -> None:
    (tmp_path / "milliwatt.toml").write_text('[shield]\nrules = "baseline"\n')
    waf = _doctor(tmp_path)["waf"]
    assert waf["rules"] == "baseline"
    assert "crs_version" not in waf
    assert 0 < waf["rule_count"] < 100


def test_cpu_features_are_the_flags_set() -> None:
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | AMX_INT8 = 1 | OPENMP = 1 | "
    assert cpu_features(info) == ["SSE3", "AVX", "AMX_INT8", "OPENMP"]
    assert cpu_features("") == []
