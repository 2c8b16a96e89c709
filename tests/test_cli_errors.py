"""Expected failures of any command end in one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
BAD_REFERENCE = '[[agents]]\nname = "milliwatt"\nmodels = ["qwen-coder-0.5b"]\n'


def _milliwatt(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MILLIWATT_")}
    base |= {"PYTHONPATH": str(REPO / "src"), "MILLIWATT_DATA_DIR": str(cwd / "data")}
    return subprocess.run(
        [sys.executable, "-m", "milliwatt.cli", *args],
        cwd=cwd, env=base | env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _one_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("toml", "command", "says"),
    [
        (BAD_REFERENCE, ["doctor"], "agent 'milliwatt' uses unknown model 'qwen-coder-0.5b'"),
        ("port = 99999\n", ["chat", "hello"], "port: Input should be less than or equal"),
        ("port = \n", ["sessions", "list"], "invalid TOML in milliwatt.toml"),
    ],
)
def test_bad_configuration_is_one_line(
    tmp_path: Path, toml: str, command: list[str], says: str
) -> None:
    (tmp_path / "milliwatt.toml").write_text(toml)
    line = _one_line(_milliwatt(tmp_path, *command))
    assert line.startswith("milliwatt: error: ")
    assert says in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "milliwatt.toml").write_text(BAD_REFERENCE)
    for run in (
        _milliwatt(tmp_path, "--debug", "doctor"),
        _milliwatt(tmp_path, "doctor", MILLIWATT_DEBUG="1"),
    ):
        assert run.returncode != 0
        assert "Traceback" in run.stderr
        assert "uses unknown model 'qwen-coder-0.5b'" in run.stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    run = _milliwatt(tmp_path, "doctor", MILLIWATT_CONFIG=str(tmp_path / "gone.toml"))
    assert "gone.toml, which is not a file" in _one_line(run)


def test_unreachable_model_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "milliwatt.toml").write_text(
        f'[models.remote]\nbackend = "openai"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n'
        'timeout_seconds = 2\n\n[[agents]]\nname = "milliwatt"\nmodels = ["remote"]\n'
    )
    line = _one_line(_milliwatt(tmp_path, "chat", "Write a haiku about the sea."))
    assert line.startswith("milliwatt: error: remote: ")


def test_missing_model_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "milliwatt.toml").write_text('[models.smollm2-135m]\npath = "missing.gguf"\n')
    line = _one_line(_milliwatt(tmp_path, "chat", "Write a haiku about the sea."))
    assert "missing.gguf" in line


def test_the_installed_command_is_the_wrapped_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["milliwatt"] == "milliwatt.cli:main"


def test_expected_failures_are_told_apart_by_type() -> None:
    from pydantic import BaseModel, ValidationError

    from milliwatt.cli import expected
    from milliwatt.errors import ModelBusyError, PolicyDeniedError, UnknownAgentError

    class Port(BaseModel):
        port: int

    try:
        Port.model_validate({"port": "x"})
    except ValidationError as exc:
        invalid = exc
    for error in (UnknownAgentError("ghost"), ModelBusyError("full"), PolicyDeniedError("no")):
        assert expected(error)  # every MilliwattError, whatever its message says
    assert expected(invalid) and expected(FileNotFoundError("gone.toml"))
    assert not expected(RuntimeError("invalid configuration"))  # a bug keeps its traceback
    assert not expected(KeyError("agent"))
