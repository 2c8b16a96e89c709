"""The cluster plan, without Ray: per-PoP placement, autoscaling on queue length, GPU tiers
only where a PoP has a GPU, and clear errors for a bad cluster.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from milliwatt.cluster.plan import ClusterConfig, Scaling, load_cluster_config, plan
from milliwatt.errors import InvalidRequestError


def test_each_deployment_asks_for_its_pop_and_scales_on_queue_length() -> None:
    config = ClusterConfig(
        pops=["fra", "sin"],
        tiers={
            "small": Scaling(num_cpus=2, min_replicas=1, max_replicas=4, target_ongoing_requests=3),
            "large": Scaling(num_gpus=1),
        },
    )
    fra, sin = plan(config, ["small", "large"], gpu_pops={"sin"})
    assert (fra.route_prefix, sorted(fra.tiers), fra.left_out) == ("/fra", ["small"], ("large",))
    assert (sorted(sin.tiers), sin.left_out) == (["large", "small"], ())
    small = fra.tiers["small"].options
    assert small["ray_actor_options"] == {
        "num_cpus": 2, "num_gpus": 0.0, "resources": {"pop:fra": 0.001},
    }  # fmt: skip
    assert small["autoscaling_config"] == {
        "min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 3,
    }  # fmt: skip
    assert sin.tiers["large"].options["ray_actor_options"]["num_gpus"] == 1
    assert sin.gateway.options["ray_actor_options"]["resources"] == {"pop:sin": 0.001}


def test_a_pop_with_no_usable_tier_is_refused() -> None:
    config = ClusterConfig(pops=["fra"], tiers={"large": Scaling(num_gpus=1)})
    with pytest.raises(InvalidRequestError, match="PoP 'fra' has no node for any model tier"):
        plan(config, ["large"], gpu_pops=set())


def test_a_tier_no_agent_uses_is_refused() -> None:
    config = ClusterConfig(pops=["fra"], tiers={"typo": Scaling()})
    with pytest.raises(InvalidRequestError, match=r"tiers\.typo: no agent uses"):
        plan(config, ["small"], gpu_pops=set())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('pops = ["fra", "fra"]\n', "pops: a PoP is listed twice"),
        ('pops = ["Fra"]\n', "PoP name 'Fra'"),
        ("pops = []\n", "pops: List should have at least 1 item"),
        ('pops = ["fra"]\n[tiers.small]\nnum_cpu = 1\n', "tiers.small.num_cpu: Extra inputs"),
        ('pops = ["fra"\n', "not valid TOML"),
    ],
)
def test_a_bad_cluster_file_names_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    with pytest.raises(InvalidRequestError) as caught:
        load_cluster_config(path)
    assert message in str(caught.value)
