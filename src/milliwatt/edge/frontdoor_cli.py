"""`milliwatt frontdoor`: the front door before the PoPs of a pops file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def frontdoor(
    pops: Annotated[
        Path,
        typer.Option(
            "--pops",
            help="TOML file: each PoP's replica URLs (pops.NAME.replicas), frontdoor settings.",
        ),
    ],
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Send each request to the nearest healthy PoP by measured RTT, failing over on loss."""
    import logging

    import uvicorn

    from milliwatt.edge.frontdoor import FrontDoor
    from milliwatt.edge.pops import load_config

    # replicas taken out and back in, one line each
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    config = load_config(pops)
    settings = config.frontdoor
    door = FrontDoor(config)
    names = ", ".join(f"{n} ({len(p.replicas)})" for n, p in config.pops.items())
    listen_host = host or settings.host
    listen_port = settings.port if port is None else port
    typer.echo(f"milliwatt frontdoor: http://{listen_host}:{listen_port} before {names}", err=True)
    uvicorn.run(door.app(), host=listen_host, port=listen_port, log_level="warning")
