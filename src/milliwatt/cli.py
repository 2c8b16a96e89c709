"""The `milliwatt` command. Each command family lives in its own module; this file mounts them."""

from __future__ import annotations

import typer

from milliwatt.shield.egress.cli import egress_app

app = typer.Typer(
    name="milliwatt",
    help="Cheap, fast, hardened AI agents: deterministic tools first, small models next.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Command families register below, one line each.
app.add_typer(egress_app, name="egress")
