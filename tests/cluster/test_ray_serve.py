"""milliwatt on a real local Ray cluster of two PoPs (two Ray nodes, one tagged pop:fra, one
pop:sin): every deployment lands on its PoP's node, the GPU tier is left out where there is
no GPU, and each PoP answers chat turns over Serve's HTTP proxy, also through the front door.

Skipped without Ray (`pip install 'milliwatt[ray]'`). The model tier is an OpenAI-compatible
backend on a scripted server on loopback: the test is about placement and the path through
the deployments, not about a model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port
from tests.edge.frontdoor_fixtures import frontdoor_thread, pops_toml
from tests.scripted_model import scripted_model

pytest.importorskip("ray.serve")

from typer.testing import CliRunner

from milliwatt.cluster.plan import ClusterConfig, GatewayScaling, load_cluster_config, plan
from milliwatt.config import AgentConfig, Settings


@pytest.fixture
def model_url() -> Iterator[str]:
    with scripted_model(lambda messages: {"content": "echo: " + messages[-1]["content"]}) as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def two_pops() -> Iterator[dict[str, str]]:
    """A head node for pop:fra and a second node for pop:sin; PoP name -> node id."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"pop:fra": 1}, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=1, resources={"pop:sin": 1})
    ray.init(address=cluster.address, logging_level="warning")
    cluster.wait_for_nodes()
    nodes = {
        resource.split(":", 1)[1]: node["NodeID"]
        for node in ray.nodes()
        for resource in node["Resources"]
        if resource.startswith("pop:")
    }
    try:
        yield nodes
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


def test_each_pop_runs_its_deployments_on_its_own_nodes_and_answers(
    two_pops: dict[str, str], model_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed by `milliwatt cluster deploy` from milliwatt.toml and cluster.toml."""
    import ray

    from milliwatt.cluster.cli import app
    from milliwatt.cluster.deploy import placements

    agents = tmp_path / "milliwatt.toml"
    agents.write_text(f"""
[models.small]
backend = "openai"
base_url = "{model_url}"
remote_name = "small"

[models.big]
backend = "openai"
base_url = "{model_url}"
remote_name = "big"

[[agents]]
name = "milliwatt"
models = ["small", "big"]
tools = []
""")
    port = free_port()
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(f"""
pops = ["fra", "sin"]
proxy_host = "127.0.0.1"
proxy_port = {port}

[gateway]
num_cpus = 0.1
max_replicas = 2

[tiers.small]
num_cpus = 0.1
max_replicas = 2
target_ongoing_requests = 2

[tiers.big]
num_cpus = 0.1
num_gpus = 1
""")
    monkeypatch.setenv("MILLIWATT_CONFIG", str(agents))
    monkeypatch.setenv("MILLIWATT_DATA_DIR", str(tmp_path / "data"))
    address = ray.get_runtime_context().gcs_address
    shown = CliRunner().invoke(app, ["deploy", "--cluster", str(cluster), "--address", address])
    assert shown.exit_code == 0, shown.output
    assert "tier-small" in shown.output and "big" in shown.output  # big: left out, no GPU
    status = CliRunner().invoke(app, ["status", "--cluster", str(cluster), "--address", address])
    assert status.exit_code == 0, status.output
    rows = [line for line in status.output.splitlines() if line.startswith("│")]  # the table's
    assert sum("tier-small" in row for row in rows) == 2  # one per PoP (Ray logs lines too)
    config = load_cluster_config(cluster)
    plans = plan(config, ["small", "big"], gpu_pops=set())
    assert [(p.pop, sorted(p.tiers), p.left_out) for p in plans] == [
        ("fra", ["small"], ("big",)),  # no GPU anywhere: the GPU tier is left out
        ("sin", ["small"], ("big",)),
    ]
    where = placements(plans)
    for pop, deployments in where.items():
        assert set(deployments) == {"gateway", "tier-small"}
        for name, placed in deployments.items():
            assert (placed["node_id"], placed["pops"]) == (two_pops[pop], [pop]), (pop, name)
    for pop in ("fra", "sin"):
        base = f"http://127.0.0.1:{port}/{pop}"
        assert httpx.get(f"{base}/healthz", timeout=30).json()["status"] == "ok"
        body = {"model": "milliwatt", "messages": [{"role": "user", "content": f"hi {pop}"}]}
        answer = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == f"echo: hi {pop}"
    # the two Ray PoPs behind the front door: each PoP's URL is one of its replicas
    pops = pops_toml({pop: [f"http://127.0.0.1:{port}/{pop}"] for pop in ("fra", "sin")})
    with frontdoor_thread(pops) as (url, _):
        body = {"model": "milliwatt", "messages": [{"role": "user", "content": "hi door"}]}
        for nearest in ("fra", "sin"):  # this client's own RTTs rank the PoPs
            answer = httpx.post(
                f"{url}/v1/chat/completions", json=body, timeout=60,
                headers={"x-milliwatt-rtt": f"{nearest}=1"},
            )  # fmt: skip
            assert answer.headers["x-milliwatt-pop"] == nearest
            assert answer.json()["choices"][0]["message"]["content"] == "echo: hi door"


@pytest.mark.slow
def test_a_llama_cpp_tier_answers_through_its_pop(tmp_path: Path) -> None:
    """The default agent on the bundled GGUF: the model tier runs llama.cpp in its own
    replica, the gateway streams its tokens; the tool route never calls the tier."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from milliwatt.cluster.deploy import deploy, placements

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"pop:fra": 1}, "include_dashboard": False},
    )
    ray.init(address=cluster.address, logging_level="warning")
    try:
        settings = Settings(
            data_dir=tmp_path / "data", agents=[AgentConfig(name="milliwatt", tools=["math.*"])]
        )
        port = free_port()
        config = ClusterConfig(
            pops=["fra"], proxy_host="127.0.0.1", proxy_port=port,
            gateway=GatewayScaling(num_cpus=0.1),
        )  # fmt: skip
        (fra,) = deploy(config, settings)
        assert list(fra.tiers) == ["smollm2-135m"]
        assert set(placements([fra])["fra"]) == {"gateway", "tier-smollm2-135m"}
        url = f"http://127.0.0.1:{port}/fra/v1/chat/completions"

        def ask(question: str, **extra: object) -> httpx.Response:
            body = {"model": "milliwatt", "messages": [{"role": "user", "content": question}]}
            return httpx.post(url, json=body | extra, timeout=300)

        tool = ask("What is 17 * 23?").json()
        assert "391" in tool["choices"][0]["message"]["content"]
        assert tool["usage"]["completion_tokens"] == 0  # answered by the tool
        with httpx.stream(
            "POST", url, timeout=300, json={"model": "milliwatt", "stream": True,
            "max_tokens": 16, "messages": [{"role": "user", "content": "Name a colour."}]},
        ) as answer:  # fmt: skip
            deltas = [line for line in answer.iter_lines() if '"content"' in line]
        assert len(deltas) >= 2  # tokens arrive one by one from the tier's replica
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()
