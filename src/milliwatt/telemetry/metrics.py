"""Prometheus metrics, named by Prometheus' rules (base units, `_total` counters).

Each server has its own registry: two apps in one process (tests) never share counts.
Model workers are read when scraped, so /metrics shows their state at that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from milliwatt.telemetry.records import DENIAL_KINDS, ROUTES, RequestRecord, attack_families

# from a cached tool answer (< 1 ms) to a long generation (minutes)
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip

ModelStatus = Callable[[], Mapping[str, Mapping[str, object]]]


class Metrics:
    def __init__(self, model_status: ModelStatus | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "milliwatt_requests", "Chat requests by route and HTTP status", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "milliwatt_request_duration_seconds", "Time to answer a chat request, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "milliwatt_tokens", "Model tokens, by model and type (input, output)",
            ["model", "type"], registry=r,
        )  # fmt: skip
        self.energy = Counter(
            "milliwatt_energy_joules", "Estimated energy spent answering, by route", ["route"],
            registry=r,
        )  # fmt: skip
        self.tool_calls = Counter(
            "milliwatt_tool_calls", "Tool calls, by tool and outcome (ok, error)",
            ["tool", "outcome"], registry=r,
        )  # fmt: skip
        self.waf_blocks = Counter(
            "milliwatt_waf_blocks", "Requests the WAF blocked, by CRS rule family", ["family"],
            registry=r,
        )  # fmt: skip
        self.denials = Counter(
            "milliwatt_denials", "Requests refused or cut short by a control, by kind", ["kind"],
            registry=r,
        )  # fmt: skip
        for route in ROUTES:  # every series exists from the start: rate() needs its zero
            self.duration.labels(route)
            self.energy.labels(route)
        for kind in DENIAL_KINDS:
            self.denials.labels(kind)
        if model_status is not None:
            r.register(_WorkerCollector(model_status))

    def observe(self, record: RequestRecord) -> None:
        route = record.route or "error"
        self.requests.labels(route, str(record.status)).inc()
        self.duration.labels(route).observe(record.duration_ms / 1000)
        self.energy.labels(route).inc(record.joules_est)
        if record.model and record.tokens:
            self.tokens.labels(record.model, "input").inc(record.prompt_tokens)
            self.tokens.labels(record.model, "output").inc(record.completion_tokens)
        for tool in record.tools:
            self.tool_calls.labels(tool["name"], "ok" if tool.get("ok") else "error").inc()
        if record.waf_blocked:
            for family in attack_families(record.waf_rules):
                self.waf_blocks.labels(family).inc()
        for kind in record.denials:
            self.denials.labels(kind).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type, for GET /metrics."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _WorkerCollector(Collector):
    """Each local model's worker, read at scrape time from the runtime's status."""

    def __init__(self, status: ModelStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "milliwatt_model_worker_up", "1 when the model's worker is ready", labels=["model"]
        )
        restarts = CounterMetricFamily(
            "milliwatt_model_worker_restarts", "Restarts of the model's worker", labels=["model"]
        )
        running = GaugeMetricFamily(
            "milliwatt_model_requests_running", "Generations in progress", labels=["model"]
        )
        waiting = GaugeMetricFamily(
            "milliwatt_model_requests_waiting", "Callers waiting for a slot", labels=["model"]
        )
        for name, state in self.status().items():
            if "state" not in state:  # a remote model has no worker
                continue
            up.add_metric([name], 1.0 if state["state"] == "ready" else 0.0)
            restarts.add_metric([name], _number(state.get("restarts")))
            running.add_metric([name], _number(state.get("running")))
            waiting.add_metric([name], _number(state.get("waiting")))
        yield from (up, restarts, running, waiting)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
