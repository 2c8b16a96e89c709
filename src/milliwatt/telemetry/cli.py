"""`milliwatt report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from milliwatt.config import load_settings
from milliwatt.telemetry.report import build_report
from milliwatt.telemetry.summary import parse_span


def report(
    since: Annotated[str, typer.Option(help="How far back: 90m, 24h, 7d.")] = "24h",
    out: Annotated[Path, typer.Option(help="Where to write it: a .html or .png file.")] = Path(
        "report.html"
    ),
) -> None:
    """One page of what the server did: route mix, cost and savings, latency, blocks."""
    seconds = parse_span(since)
    settings = load_settings()
    summary = build_report(Path(settings.data_dir), seconds, out)
    routes = ", ".join(f"{k} {v}" for k, v in summary["routes"].items() if v)
    typer.echo(f"{out}: {summary['requests']} requests in the last {since} ({routes or 'none'})")
