"""What `milliwatt cluster deploy` puts on a Ray cluster, decided without Ray.

    # cluster.toml
    pops = ["fra", "sin"]        # each a set of Ray nodes started with resource pop:NAME
    proxy_port = 8000            # Ray Serve's HTTP port on every node; PoP NAME under /NAME

    [gateway]                    # one Serve application per PoP: this is its ingress
    num_cpus = 0.5
    min_replicas = 1
    max_replicas = 2

    [tiers.smollm2-135m]         # one deployment per model tier per PoP, its own replicas
    num_cpus = 1
    min_replicas = 1
    max_replicas = 4
    target_ongoing_requests = 2  # autoscale on queue length: requests per replica

    [tiers.large]
    num_gpus = 1                 # a GPU tier: only in PoPs that have a GPU node

Every replica asks for a sliver of its PoP's resource (pop:NAME), so Ray places it only on
that PoP's nodes. The same agents (milliwatt.toml) are deployed to every PoP; a PoP without
a GPU leaves its GPU tiers out and its agents use the tiers it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from milliwatt.config import read_toml
from milliwatt.errors import InvalidRequestError

POP_RESOURCE = "pop:{}"
# each replica claims this much of its PoP's resource: placement, not capacity (a node
# started with pop:fra = 1 holds up to 1000 replicas; CPUs and GPUs bound the real number)
POP_SHARE = 0.001


class Scaling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    # Serve's autoscaler keeps about this many requests queued or running per replica
    target_ongoing_requests: float = Field(2.0, gt=0)
    max_ongoing_requests: int = Field(8, ge=1)


class GatewayScaling(Scaling):
    num_cpus: float = Field(0.5, ge=0)
    max_ongoing_requests: int = Field(64, ge=1)  # streams wait on tiers, not on CPU
    target_ongoing_requests: float = Field(16.0, gt=0)


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pops: list[str] = Field(min_length=1)
    proxy_host: str = "0.0.0.0"
    proxy_port: int = Field(8000, ge=1, le=65535)
    gateway: GatewayScaling = GatewayScaling()
    tiers: dict[str, Scaling] = Field(default_factory=dict)

    @field_validator("pops")
    @classmethod
    def _distinct(cls, pops: list[str]) -> list[str]:
        for name in pops:
            if not name.replace("-", "").replace("_", "").isalnum() or name != name.lower():
                raise ValueError(f"PoP name {name!r}: lowercase letters, digits, - and _")
        if len(set(pops)) != len(pops):
            raise ValueError("a PoP is listed twice")
        return pops


@dataclass(frozen=True)
class Deployment:
    name: str
    options: dict[str, Any]  # what serve.deployment(...).options() takes


@dataclass(frozen=True)
class PopPlan:
    pop: str
    route_prefix: str
    gateway: Deployment
    tiers: dict[str, Deployment]  # model name -> its deployment in this PoP
    left_out: tuple[str, ...]  # GPU tiers a PoP without a GPU goes without


def deployment_options(scaling: Scaling, pop: str) -> dict[str, Any]:
    autoscaling = {
        "min_replicas": scaling.min_replicas,
        "max_replicas": max(scaling.max_replicas, scaling.min_replicas),
        "target_ongoing_requests": scaling.target_ongoing_requests,
    }
    actor = {
        "num_cpus": scaling.num_cpus,
        "num_gpus": scaling.num_gpus,
        "resources": {POP_RESOURCE.format(pop): POP_SHARE},
    }
    return {
        "autoscaling_config": autoscaling,
        "ray_actor_options": actor,
        "max_ongoing_requests": scaling.max_ongoing_requests,
    }


def plan(config: ClusterConfig, tiers_in_use: list[str], gpu_pops: set[str]) -> list[PopPlan]:
    """One application per PoP: the gateway and a deployment per model tier in use."""
    unknown = sorted(set(config.tiers) - set(tiers_in_use))
    if unknown:
        raise InvalidRequestError(f"tiers.{unknown[0]}: no agent uses a model of that name")
    plans = []
    for pop in config.pops:
        tiers: dict[str, Deployment] = {}
        left_out: list[str] = []
        for model in tiers_in_use:
            scaling = config.tiers.get(model, Scaling())
            if scaling.num_gpus > 0 and pop not in gpu_pops:
                left_out.append(model)
                continue
            tiers[model] = Deployment(f"tier-{model}", deployment_options(scaling, pop))
        if not tiers:
            raise InvalidRequestError(f"PoP {pop!r} has no node for any model tier")
        gateway = Deployment("gateway", deployment_options(config.gateway, pop))
        plans.append(PopPlan(pop, f"/{pop}", gateway, tiers, tuple(left_out)))
    return plans


def load_cluster_config(path: Path) -> ClusterConfig:
    return read_toml(path, ClusterConfig)
