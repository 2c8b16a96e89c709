"""`milliwatt edge`: the inference edge's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from milliwatt.edge.placement import Objective
from milliwatt.edge.plan import load_inputs, make_plan, plan_table

edge_app = typer.Typer(help="The inference edge: where points of presence go.")


@edge_app.command()
def plan(
    users: Annotated[Path, typer.Option(help="CSV of city,lat,lon,weight: where users are")],
    sites: Annotated[Path, typer.Option(help="CSV of site,lat,lon: the candidate PoP sites")],
    k: Annotated[int, typer.Option("--k", help="how many sites to choose")],
    rtt: Annotated[
        Path | None,
        typer.Option(help="CSV of src,dst,rtt_ms: measured RTTs, used instead of the model"),
    ] = None,
    objective: Annotated[
        Objective, typer.Option(help="what to minimise: users' weighted mean, median or p90 RTT")
    ] = Objective.mean,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
) -> None:
    """Choose K PoP sites that bring a weighted user population closest (by round-trip time)."""
    chosen = make_plan(load_inputs(users, sites, rtt), k, objective, sites)
    if as_json:
        typer.echo(json.dumps(chosen.as_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(plan_table(chosen))
