"""The `milliwatt` command. Each command family lives in its own module; this file mounts them."""

from __future__ import annotations

import typer

from milliwatt.doctor import doctor
from milliwatt.evals.cli import app as eval_app
from milliwatt.gateway import cli as gateway_cli
from milliwatt.gateway.mcp_cli import app as mcp_app
from milliwatt.knowledge import cli as knowledge_cli
from milliwatt.shield.cli import app as shield_app
from milliwatt.shield.egress.cli import egress_app
from milliwatt.shield.waf.cli import app as waf_app
from milliwatt.tools.cli import tools_app

app = typer.Typer(
    name="milliwatt",
    help="Cheap, fast, hardened AI agents: deterministic tools first, small models next.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Command families register below, one line each.
app.add_typer(egress_app, name="egress")
app.add_typer(eval_app, name="eval")
app.add_typer(mcp_app, name="mcp")
app.add_typer(shield_app, name="shield")
app.add_typer(waf_app, name="waf")
app.add_typer(tools_app, name="tools")

app.command()(gateway_cli.serve)
app.command()(gateway_cli.chat)
app.command()(doctor)
app.add_typer(gateway_cli.sessions_app, name="sessions")
app.command()(knowledge_cli.ingest)
app.add_typer(knowledge_cli.knowledge_app, name="knowledge")

if __name__ == "__main__":  # python -m milliwatt.cli, as MCP clients launch it
    app()
