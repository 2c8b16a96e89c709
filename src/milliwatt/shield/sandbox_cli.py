"""`milliwatt sandbox run`: a command in the OS sandbox, with its exit code and output."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from milliwatt.shield.sandbox import Limits, SandboxUnavailable, run

sandbox_app = typer.Typer(help="Run commands in the OS sandbox (bubblewrap).", no_args_is_help=True)


@sandbox_app.command("run")
def run_command(
    command: Annotated[list[str], typer.Argument(help="the command and its arguments, after --")],
    timeout: Annotated[float, typer.Option(min=0.001, help="wall-clock seconds")] = 10.0,
    memory: Annotated[int, typer.Option(min=1, help="address space in MB")] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Run COMMAND with no network, a read-only system and a private /tmp; exit with its code.

    A command killed at the wall-clock limit exits 124; one killed by a signal, 128 + its number.
    """
    try:
        result = run(command, Limits(wall_s=timeout, memory_mb=memory))
    except SandboxUnavailable as exc:
        typer.echo(f"milliwatt: error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.killed_by is not None:
            sys.stderr.write(f"milliwatt: sandbox: stopped by {result.killed_by}\n")
    raise typer.Exit(result.exit_code)
