"""`milliwatt tools`: run the deterministic tools, load a graph, export a calendar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from milliwatt.config import load_settings, private_data_dir
from milliwatt.tools import arithmetic, dates, graph, scheduling, text, units
from milliwatt.tools.registry import ToolContext, ToolRegistry, UnknownToolError

tools_app = typer.Typer(help="The deterministic tools: math, units, dates, text, graph, calendar.")
FAMILIES = (arithmetic, units, dates, text, graph, scheduling)

User = Annotated[str, typer.Option(help="whose graphs and calendar to use")]


def deterministic_tools() -> ToolRegistry:
    return ToolRegistry(t for family in FAMILIES for t in family.TOOLS)


def _context(user: str) -> ToolContext:
    settings = load_settings()
    data_dir = private_data_dir(Path(settings.data_dir))
    return ToolContext(user=user, data_dir=data_dir, storage_url=settings.storage.url)


@tools_app.command("list")
def list_tools() -> None:
    """Name, effects and description of each tool."""
    for t in deterministic_tools():
        effects = ",".join(sorted(e.value for e in t.effects))
        typer.echo(f"{t.name:24} [{effects}] {t.description}")


@tools_app.command()
def call(
    name: Annotated[str, typer.Argument(help="tool name, e.g. math.calculate")],
    arguments: Annotated[str, typer.Argument(help='JSON object, e.g. \'{"expression": "2+2"}\'')],
    user: User = "cli",
) -> None:
    """Call one tool with JSON arguments and print its result as JSON."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"arguments are not JSON: {exc.msg}") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter("arguments must be a JSON object")
    try:
        result = deterministic_tools().call(name, parsed, _context(user))
    except UnknownToolError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not result.ok:
        typer.echo(f"error: {result.error}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(result.value, ensure_ascii=False, indent=2, default=str))


@tools_app.command("load-graph")
def load_graph(
    path: Annotated[Path, typer.Argument(help="a .csv/.tsv (source,target[,weight]) or .json")],
    name: Annotated[str, typer.Option(help="the graph's name")] = "default",
    directed: Annotated[bool, typer.Option(help="edges go one way only")] = False,
    user: User = "cli",
) -> None:
    """Load (or replace) a weighted graph for a user; the router then answers routes on it."""
    # the operator names the file, so any readable path is allowed (the tool is stricter)
    context = _context(user)
    try:
        graph.store_graph(context, name, graph.read_edges(path), directed)
    except (graph.GraphError, UnicodeDecodeError, OSError) as exc:
        reason = str(exc) if isinstance(exc, graph.GraphError) else f"cannot read {path}"
        typer.echo(f"error: {reason}", err=True)
        raise typer.Exit(1) from None
    loaded = graph.load_graph(context, name)
    assert loaded is not None
    nodes, edges = loaded.number_of_nodes(), loaded.number_of_edges()
    typer.echo(f"loaded graph {name!r}: {nodes} nodes, {edges} edges")


@tools_app.command("export-calendar")
def export_calendar(user: User = "cli") -> None:
    """Print a user's calendar as iCalendar (RFC 5545)."""
    typer.echo(scheduling.export_ics.call({}, _context(user)).text(), nl=False)
