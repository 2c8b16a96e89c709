"""`milliwatt shield`: the WAF as a reverse proxy, the rules it loads, the prompt firewall."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

import typer

from milliwatt.shield.firewall_cli import scan
from milliwatt.shield.proxy import ProxySettings, parse_listen, serve
from milliwatt.shield.waf import RuleLoadError

app = typer.Typer(name="shield", help="The WAF and the prompt firewall.", no_args_is_help=True)
app.command()(scan)

Mode = Literal["blocking", "detection"]


def _check_mode(mode: str) -> Mode:
    if mode == "blocking":
        return "blocking"
    if mode == "detection":
        return "detection"
    raise typer.BadParameter(f"must be 'blocking' or 'detection', not {mode!r}")


@app.command()
def proxy(
    upstream: Annotated[
        str, typer.Option(help="The application to protect, e.g. http://127.0.0.1:9000")
    ],
    listen: Annotated[str, typer.Option(help="HOST:PORT to accept clients on")] = "127.0.0.1:8081",
    rules: Annotated[
        Path | None,
        typer.Option(help="CRS rules folder (default: $MILLIWATT_CRS_DIR, then the packaged CRS)"),
    ] = None,
    mode: Annotated[str, typer.Option(help="blocking or detection (log only)")] = "blocking",
    paranoia: Annotated[int, typer.Option(min=1, max=4, help="CRS paranoia level")] = 1,
    inbound_threshold: Annotated[
        int, typer.Option(min=1, help="inbound anomaly score that blocks")
    ] = 5,
    outbound_threshold: Annotated[
        int, typer.Option(min=1, help="outbound anomaly score that blocks")
    ] = 4,
    audit_log: Annotated[Path | None, typer.Option(help="JSON-lines audit log file")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes")] = 1,
) -> None:
    """Protect any web application: inspect every request and response on the way through."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if rules is not None and not rules.is_dir():
        raise typer.BadParameter(f"{rules} is not a folder", param_hint="--rules")
    try:
        parse_listen(listen)
        settings = ProxySettings(
            upstream=upstream, mode=_check_mode(mode), paranoia=paranoia,
            inbound_threshold=inbound_threshold, outbound_threshold=outbound_threshold,
            crs_dir=str(rules) if rules else None, audit_log=str(audit_log) if audit_log else None,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"milliwatt shield: {listen} -> {upstream} ({mode}, paranoia {paranoia})", err=True)
    try:
        serve(settings, listen, workers)
    except (RuleLoadError, FileNotFoundError) as exc:
        typer.echo(f"error: cannot load the rules: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def rules(
    rules: Annotated[Path | None, typer.Argument(help="CRS rules folder")] = None,
    paranoia: Annotated[int, typer.Option(min=1, max=4)] = 1,
) -> None:
    """Load the rules and say where they came from and how many there are."""
    from milliwatt.shield.http import load_waf

    try:
        waf = load_waf(crs_dir=rules, paranoia=paranoia)
    except (RuleLoadError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{waf.rule_count} rules from {waf.source}")
