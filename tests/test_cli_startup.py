"""`milliwatt --help` lists every command family without importing one (cli_families.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer.main
from typer._click import Context
from typer.core import TyperGroup

from milliwatt.cli import app
from milliwatt.cli_families import FAMILIES, load

HEAVY = ("milliwatt.agent", "milliwatt.knowledge", "mcp", "llama_cpp", "numpy", "starlette")

PROBE = """
import contextlib, io, json, sys
import milliwatt.cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        milliwatt.cli.app(["--help"], prog_name="milliwatt")
    except SystemExit:
        pass
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"mcp", "llama_cpp", "numpy",
    "starlette"} or m.startswith(("milliwatt.agent", "milliwatt.knowledge")))
print(json.dumps({"help": out.getvalue(), "loaded": loaded}))
"""


def test_top_level_help_imports_no_command_family() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=os.environ | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert report["loaded"] == []
    for family in FAMILIES.values():  # each family is still listed with its help line
        assert family.help in report["help"]


def test_each_familys_listed_help_is_its_own() -> None:
    for name, family in FAMILIES.items():
        command = load(name)
        own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        assert own == family.help, name


def test_every_mounted_family_is_listed_and_runs() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    context = Context(group)
    assert group.list_commands(context) == list(FAMILIES)
    _, command, _ = group.resolve_command(context, ["knowledge", "--help"])
    assert isinstance(command, TyperGroup)  # the real group, with its subcommands
    assert command.list_commands(Context(command))


def test_a_family_of_one_command_keeps_its_command_name() -> None:
    sandbox = load("sandbox")  # `milliwatt sandbox run -- CMD`, not `milliwatt sandbox CMD`
    assert isinstance(sandbox, TyperGroup) and list(sandbox.commands) == ["run"]
