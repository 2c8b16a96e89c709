"""`milliwatt lab`: the topology lab from the command line (`run` needs root)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from milliwatt.edge.lab import namespaces
from milliwatt.edge.lab.results import as_json, headline, table
from milliwatt.edge.lab.runner import run_lab, unwind_on_sigterm
from milliwatt.edge.lab.scenarios import SCENARIOS, scenario
from milliwatt.errors import InvalidRequestError

HELP = "The topology lab: an agent's loop served from the nearest PoP and from a central region."
app = typer.Typer(help=HELP, no_args_is_help=True)


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        raise InvalidRequestError(f"--steps {text!r}: positive integers, comma-separated") from None
    if not steps or min(steps) < 1:
        raise InvalidRequestError(f"--steps {text!r}: positive integers, comma-separated")
    return list(dict.fromkeys(steps))


@app.command("run")
def run(
    steps: Annotated[str, typer.Option(help="loop lengths N, comma-separated")] = "1,3,10",
    scenarios: Annotated[
        list[str] | None,
        typer.Option("--scenario", help=f"one of {', '.join(SCENARIOS)}; repeatable (all)"),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="loops per N and PoP")] = 3,
    max_tokens: Annotated[int, typer.Option(min=1, help="tokens per model call")] = 4,
    tool: Annotated[bool, typer.Option(help="a tool call after each model call")] = True,
    as_json_: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Time N-step agent loops against an edge PoP and a central one, through the lab.

    Makes network namespaces (root only), serves the bundled model from two identical
    `milliwatt serve` processes and delays each path by its modelled round trip.
    """
    chosen = [scenario(name) for name in (scenarios or list(SCENARIOS))]
    unwind_on_sigterm()
    results = run_lab(
        chosen,
        parse_steps(steps),
        repeats=repeats,
        max_tokens=max_tokens,
        tool=tool,
        progress=lambda line: typer.echo(line, err=True),
    )
    if as_json_:
        typer.echo(json.dumps(as_json(results), indent=2))
        return
    for line in table(results):
        typer.echo(line)
    typer.echo(headline(results))


@app.command("scenarios")
def list_scenarios() -> None:
    """The scenarios: each user's distance and modelled round trip to its two PoPs."""
    for known in SCENARIOS.values():
        typer.echo(known.describe())


@app.command("clean")
def clean() -> None:
    """Remove namespaces that lab runs killed before they could clean up."""
    for name in namespaces.remove_stale():
        typer.echo(f"removed {name}")
