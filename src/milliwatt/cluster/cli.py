"""`milliwatt cluster`: PoPs as Ray nodes, the agents deployed to every PoP with Ray Serve."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from milliwatt.terminal import literal

if TYPE_CHECKING:
    from milliwatt.cluster.plan import ClusterConfig, PopPlan

app = typer.Typer(
    help="Run the agents on a Ray cluster: each PoP a set of Ray nodes.", no_args_is_help=True
)
console = Console()
ADDRESS = typer.Option(help="The Ray cluster's address (default: the one on this machine).")


def _need_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        console.print(literal("Ray is not installed: pip install 'milliwatt[ray]'", "red"))
        raise typer.Exit(2)


@app.command()
def up(
    pop: Annotated[str, typer.Option(help="The PoP this machine's node belongs to.")],
    address: Annotated[
        str | None, typer.Option(help="Join the cluster at this head address; omit: be the head.")
    ] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs to offer (default: all).")] = None,
    num_gpus: Annotated[int | None, typer.Option(help="GPUs to offer (default: all).")] = None,
) -> None:
    """Start a Ray node on this machine, tagged with the resource pop:NAME."""
    _need_ray()
    args = [sys.executable, "-m", "ray.scripts.scripts", "start"]
    args += [f"--address={address}"] if address else ["--head"]
    args.append("--resources=" + json.dumps({f"pop:{pop}": 1}))
    args += [f"--num-cpus={num_cpus}"] if num_cpus is not None else []
    args += [f"--num-gpus={num_gpus}"] if num_gpus is not None else []
    raise typer.Exit(subprocess.run(args, check=False).returncode)


@app.command()
def deploy(
    cluster: Annotated[Path, typer.Option("--cluster", help="cluster.toml: PoPs and tiers.")],
    address: Annotated[str | None, ADDRESS] = None,
) -> None:
    """Deploy the configured agents (milliwatt.toml) to every PoP of cluster.toml."""
    _need_ray()
    from milliwatt.cluster import deploy as deploying
    from milliwatt.cluster.plan import load_cluster_config
    from milliwatt.config import load_settings

    config = load_cluster_config(cluster)
    settings = load_settings()
    deploying.connect(address)
    _show(config, deploying.deploy(config, settings))


@app.command()
def status(
    cluster: Annotated[Path, typer.Option("--cluster", help="cluster.toml: PoPs and tiers.")],
    address: Annotated[str | None, ADDRESS] = None,
) -> None:
    """Where each PoP's deployments run now."""
    _need_ray()
    from milliwatt.cluster.deploy import connect
    from milliwatt.cluster.deployments import gpu_pops, tiers_in_use
    from milliwatt.cluster.plan import load_cluster_config, plan
    from milliwatt.config import load_settings

    config = load_cluster_config(cluster)
    connect(address)
    _show(config, plan(config, tiers_in_use(load_settings()), gpu_pops(config.pops)))


def _show(config: ClusterConfig, plans: list[PopPlan]) -> None:
    from milliwatt.cluster.deploy import placements

    where = placements(plans)
    table = Table("PoP", "URL", "deployment", "node", "left out (no GPU)")
    for pop_plan in plans:
        url = f"http://<node of {pop_plan.pop}>:{config.proxy_port}{pop_plan.route_prefix}/v1"
        for i, (name, placed) in enumerate(where[pop_plan.pop].items()):
            first = i == 0
            table.add_row(
                *(literal(c) for c in (pop_plan.pop if first else "", url if first else "",
                  name, placed["node_id"][:12], ", ".join(pop_plan.left_out) if first else ""))
            )  # fmt: skip
    console.print(table)


@app.command()
def down(address: Annotated[str | None, ADDRESS] = None) -> None:
    """Remove every deployed PoP application (the Ray nodes keep running)."""
    _need_ray()
    from ray import serve

    from milliwatt.cluster.deploy import connect

    connect(address)
    serve.shutdown()
