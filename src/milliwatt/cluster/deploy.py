"""Deploy the configured agents to every PoP of a Ray cluster, and see where they run."""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray import serve

from milliwatt.cluster.deployments import application, gpu_pops, tiers_in_use
from milliwatt.cluster.plan import ClusterConfig, PopPlan, plan
from milliwatt.config import Settings


def deploy(config: ClusterConfig, settings: Settings) -> list[PopPlan]:
    """One Serve application per PoP, at /NAME on Serve's HTTP port of every node. Needs
    ray.init() done (connected to the cluster)."""
    serve.start(
        # a proxy on every node: a user's request enters at a node of its own PoP
        proxy_location="EveryNode",
        http_options={"host": config.proxy_host, "port": config.proxy_port},
    )
    plans = plan(config, tiers_in_use(settings), gpu_pops(config.pops))
    for pop_plan in plans:
        app = application(pop_plan, settings, config.proxy_host, config.proxy_port)
        serve.run(app, name=pop_plan.pop, route_prefix=pop_plan.route_prefix)
    return plans


def placements(plans: list[PopPlan]) -> dict[str, dict[str, Any]]:
    """PoP -> deployment -> where one of its replicas runs (node id, that node's PoPs)."""
    found: dict[str, dict[str, Any]] = {}
    for pop_plan in plans:
        names = [pop_plan.gateway.name, *(d.name for d in pop_plan.tiers.values())]
        found[pop_plan.pop] = {
            name: serve.get_deployment_handle(name, app_name=pop_plan.pop)
            .placement.remote()
            .result(timeout_s=60)
            for name in names
        }
    return found


def connect(address: str | None) -> None:
    ray.init(address=address or "auto", logging_level=logging.WARNING, ignore_reinit_error=True)
