"""The `milliwatt` command. Each command family lives in its own module; this file mounts them."""

from __future__ import annotations

import os
import sys
import tomllib
from typing import Annotated

import typer

from milliwatt.cli_families import LazyGroup
from milliwatt.errors import MilliwattError

app = typer.Typer(
    name="milliwatt",
    help="Cheap, fast, hardened AI agents: deterministic tools first, small models next.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyGroup,  # command families are imported when their command runs (cli_families.py)
)

# failures a user can meet and fix: one line each, no traceback unless asked for
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (MilliwattError, ValueError, OSError)


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


def main() -> None:
    """The `milliwatt` command: expected failures end in one line on stderr and exit 1."""
    try:
        app()
    except Exception as exc:
        if not expected(exc) or os.environ.get("MILLIWATT_DEBUG", "") not in ("", "0"):
            raise
        print(f"milliwatt: error: {describe(exc)} (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(1) from None


def expected(exc: BaseException) -> bool:
    """Whether `exc` is a failure the user can fix, told apart by type. pydantic is looked
    at only when a command loaded it: a ValidationError cannot come from anywhere else."""
    if isinstance(exc, EXPECTED_ERRORS):
        return True
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, in the user's terms."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
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
