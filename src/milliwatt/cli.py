"""The `milliwatt` command. Each command family lives in its own module; this file mounts them."""

from __future__ import annotations

import os
import sys
import tomllib
from typing import Annotated

import typer
from pydantic import ValidationError

from milliwatt.access.cli import admin_app, audit_app, keys_app
from milliwatt.doctor import doctor
from milliwatt.evals.cli import app as eval_app
from milliwatt.gateway import cli as gateway_cli
from milliwatt.gateway.mcp_cli import app as mcp_app
from milliwatt.knowledge import cli as knowledge_cli
from milliwatt.models.base import ModelError
from milliwatt.models.cli import models_app
from milliwatt.shield.cli import app as shield_app
from milliwatt.shield.egress.cli import egress_app
from milliwatt.shield.sandbox_cli import sandbox_app
from milliwatt.shield.waf.cli import app as waf_app
from milliwatt.telemetry.cli import report
from milliwatt.tools.cli import tools_app

app = typer.Typer(
    name="milliwatt",
    help="Cheap, fast, hardened AI agents: deterministic tools first, small models next.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# failures a user can meet and fix: one line each, no traceback unless asked for
EXPECTED_ERRORS = (ModelError, ValidationError, FileNotFoundError, ValueError, OSError)


@app.callback()
def options(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of a failure (or MILLIWATT_DEBUG=1)."),
    ] = False,
) -> None:
    """Cheap, fast, hardened AI agents: deterministic tools first, small models next."""
    if debug:
        os.environ["MILLIWATT_DEBUG"] = "1"


# Command families register below, one line each.
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(egress_app, name="egress")
app.add_typer(eval_app, name="eval")
app.add_typer(mcp_app, name="mcp")
app.add_typer(models_app, name="models")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(shield_app, name="shield")
app.add_typer(waf_app, name="waf")
app.add_typer(tools_app, name="tools")

app.command()(gateway_cli.serve)
app.command()(gateway_cli.chat)
app.command()(doctor)
app.command()(report)
app.add_typer(gateway_cli.sessions_app, name="sessions")
app.command()(knowledge_cli.ingest)
app.add_typer(knowledge_cli.knowledge_app, name="knowledge")


def main() -> None:
    """The `milliwatt` command: expected failures end in one line on stderr and exit 1."""
    try:
        app()
    except EXPECTED_ERRORS as exc:
        if os.environ.get("MILLIWATT_DEBUG", "") not in ("", "0"):
            raise
        print(f"milliwatt: error: {describe(exc)} (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(1) from None


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, in the user's terms."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        text = f"invalid configuration{_config_source()}: {problems}"
    elif isinstance(exc, tomllib.TOMLDecodeError):
        text = f"invalid TOML{_config_source()}: {exc}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")  # pydantic's label for a validator's own
    return f"{'.'.join(map(str, loc))}: {message}" if loc else message


def _config_source() -> str:
    from milliwatt.config import config_file

    try:
        path = config_file()
    except OSError:
        return ""
    return f" in {path}" if path is not None else ""


if __name__ == "__main__":  # python -m milliwatt.cli, as MCP clients launch it
    main()
