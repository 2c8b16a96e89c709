"""The README's examples run as written: every shell and Python block not marked `notest`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from milliwatt.config import Settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"^```(\w+)([^\n]*)\n(.*?)^```", README, re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, info, body in BLOCKS if lang == language and "notest" not in info]


def commands() -> list[tuple[str, int]]:
    found = []
    for body in blocks("sh"):
        for line in body.splitlines():
            command, _, comment = line.partition("  #")
            expected = re.search(r"exits (\d+)", comment)
            found.append((command.strip(), int(expected.group(1)) if expected else 0))
    return found


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("readme-data")
    # short answers, and patience on a loaded machine: the examples' content is what is tested
    config = data / "milliwatt.toml"
    config.write_text("[models.smollm2-135m]\nmax_tokens = 64\ntimeout_seconds = 600\n")
    return dict(os.environ) | {"MILLIWATT_DATA_DIR": str(data), "MILLIWATT_CONFIG": str(config)}


def test_readme_starts_with_the_two_commands() -> None:
    first = BLOCKS[0][2].strip().splitlines()
    assert first == [
        "bash scripts/install.sh && milliwatt serve",
        "bash scripts/install.sh --test && python3 -m pytest",
    ]
    assert "bash scripts/install.sh --test && python3 -m pytest" in (REPO / ".ci/run").read_text()


@pytest.mark.parametrize(("command", "expected"), commands(), ids=lambda c: str(c)[:60])
def test_shell_example(command: str, expected: int, env: dict[str, str]) -> None:
    args = shlex.split(command)
    assert args[0] == "milliwatt"
    run = subprocess.run(
        [sys.executable, "-m", "milliwatt.cli", *args[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == expected, run.stdout + run.stderr
    assert run.stdout.strip()


@pytest.mark.parametrize("code", blocks("python"))
def test_python_example(code: str, env: dict[str, str]) -> None:
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()


def test_configuration_example_is_valid(tmp_path: Path) -> None:
    (toml,) = blocks("toml")
    Settings(**tomllib.loads(toml))
