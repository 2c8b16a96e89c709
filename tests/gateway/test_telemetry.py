"""What operators read: the console's JSON, /metrics, traces and log lines, checked against
what the API answered for a scripted set of requests (real HTTP, WAF and SQLite; a
scripted model)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from tests.gateway.live_app import PacedModel, live_app

from milliwatt.config import AgentConfig, Budgets, TelemetryConfig, ToolSelectionConfig
from milliwatt.models.base import ModelResponse, ToolCall
from milliwatt.models.fake import FakeModel, scripted
from milliwatt.telemetry import logs, tracing

PLAIN = ToolSelectionConfig(enabled=False)  # no embedding model to load: every tool offered
AGENTS = [
    AgentConfig(name="milliwatt", tool_selection=PLAIN),
    # any model call breaks its budget: refused before the model is asked
    AgentConfig(name="tight", tool_selection=PLAIN, budgets=Budgets(tokens_per_request=1)),
]
TOOL_QUESTIONS = ["what is 17% of 230", "convert 5 miles to km", "what is 12 * 12"]
MODEL_QUESTIONS = ["Tell me about the sea.", "Write one line about autumn."]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with live_app(tmp_path / "data", agents=AGENTS) as base:
        yield base


def chat(url: str, text: str, agent: str = "milliwatt", **extra: Any) -> httpx.Response:
    body = {"model": agent, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body | extra, timeout=30)


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_console_and_metrics_match_what_the_api_answered(url: str) -> None:
    answers = [chat(url, q).json() for q in TOOL_QUESTIONS + MODEL_QUESTIONS]
    assert [a["milliwatt"]["route"] for a in answers] == ["tool"] * 3 + ["model"] * 2
    refused = chat(url, "Tell me a story.", agent="tight").json()
    assert refused["milliwatt"]["stop"] == "budget"
    blocked = httpx.post(
        f"{url}/v1/chat/completions?q=<script>alert(1)</script>",
        json={"model": "milliwatt", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert blocked.status_code == 403
    httpx.get(f"{url}/console")  # the console's own traffic is not counted

    summary = httpx.get(f"{url}/console/api/summary?window=1h").json()
    assert summary["requests"] == 7
    assert summary["routes"] == {"tool": 3, "model": 2, "refused": 2, "error": 0, "cancelled": 0}
    assert summary["models"] == {"smollm2-135m": 2}
    answered = [*answers, refused]
    assert summary["tokens"]["total"] == sum(a["usage"]["total_tokens"] for a in answered)
    joules = sum(a["milliwatt"]["cost"]["joules_est"] for a in answered)
    assert summary["joules_est"] == pytest.approx(joules, abs=1e-5)
    assert summary["denials"] == {"budget": 1, "waf": 1, "egress": 0, "policy": 0}
    assert summary["waf"]["blocks"] == 1 and summary["waf"]["families"]["xss"] == 1
    assert {r["id"] for r in summary["waf"]["top_rules"]} >= {"941100", "949110"}
    assert summary["latency_ms"]["tool"]["count"] == 3
    # savings: the tool answers priced at the mean cost of the smallest model's answers
    model_tokens = [a["usage"]["total_tokens"] for a in answers[3:]]
    assert summary["saved"]["baseline_model"] == "smollm2-135m"
    assert summary["saved"]["tokens"] == round(3 * sum(model_tokens) / 2)

    seen = metrics(url)
    assert seen[("milliwatt_requests_total", (("route", "tool"), ("status", "200")))] == 3
    assert seen[("milliwatt_requests_total", (("route", "model"), ("status", "200")))] == 2
    assert seen[("milliwatt_requests_total", (("route", "refused"), ("status", "200")))] == 1
    assert seen[("milliwatt_requests_total", (("route", "refused"), ("status", "403")))] == 1
    assert seen[("milliwatt_request_duration_seconds_count", (("route", "tool"),))] == 3
    tokens_in = seen[("milliwatt_tokens_total", (("model", "smollm2-135m"), ("type", "input")))]
    tokens_out = seen[("milliwatt_tokens_total", (("model", "smollm2-135m"), ("type", "output")))]
    assert tokens_in + tokens_out == sum(model_tokens)
    assert seen[("milliwatt_waf_blocks_total", (("family", "xss"),))] == 1
    assert seen[("milliwatt_denials_total", (("kind", "budget"),))] == 1
    energy = sum(v for (name, _), v in seen.items() if name == "milliwatt_energy_joules_total")
    assert energy == pytest.approx(joules, abs=1e-5)
    assert seen[("milliwatt_model_worker_up", (("model", "smollm2-135m"),))] == 1

    feed = httpx.get(f"{url}/console/api/requests?limit=10").json()["data"]
    assert [r["lane"] for r in feed][:2] == ["refused", "refused"]
    assert feed[-1]["tools"] == [{"name": "math.calculate", "ok": True}]
    newer = httpx.get(f"{url}/console/api/requests?after={feed[1]['seq']}").json()["data"]
    assert [r["id"] for r in newer] == [feed[0]["id"]]
    assert blocked.headers["x-request-id"] == feed[0]["id"]  # the WAF's audit id
    series = httpx.get(f"{url}/console/api/timeseries?window=15m").json()
    assert sum(series["lanes"]["tool"]) == 3 and sum(series["lanes"]["smollm2-135m"]) == 2


def test_console_api_names_bad_parameters(url: str) -> None:
    bad = httpx.get(f"{url}/console/api/summary?window=yesterday")
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "window" and "yesterday" in bad.text
    assert httpx.get(f"{url}/console/api/requests?after=x").status_code == 400
    assert httpx.get(f"{url}/console/api/timeseries?step=soon").status_code == 400


def test_stream_shows_tool_calls_as_they_happen(tmp_path: Path) -> None:
    call = ToolCall("1", "math.calculate", {"expression": "6 * 7"})
    model = FakeModel(
        scripted(ModelResponse("m", tool_calls=[call]), "It is 42."), name="smollm2-135m"
    )
    with live_app(tmp_path / "data", model, agents=AGENTS) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(
            model="milliwatt", messages=[{"role": "user", "content": "six sevens?"}], stream=True
        )
        chunks = [c.model_dump() for c in stream]  # the official client accepts the chunks
    kinds = [
        "tool" if (c.get("milliwatt") or {}).get("tool_call") else
        "text" if c["choices"][0]["delta"].get("content") else "other"
        for c in chunks
    ]  # fmt: skip
    assert kinds.index("tool") < kinds.index("text")  # the call comes before the answer
    tool = next(
        c["milliwatt"]["tool_call"] for c in chunks if c.get("milliwatt", {}).get("tool_call")
    )
    assert tool["name"] == "math.calculate" and tool["arguments"] == {"expression": "6 * 7"}
    assert json.loads(tool["result"])["result"] == "42" and tool["ok"] is True
    final = chunks[-1]["milliwatt"]
    assert final["route"] == "model" and final["model"] == "smollm2-135m"
    assert final["cost"]["joules_est"] > 0 and final["usage"]["completion_tokens"] > 0


def test_router_answers_stream_their_tool_call_too(url: str) -> None:
    body = {"model": "milliwatt", "stream": True,
            "messages": [{"role": "user", "content": "convert 5 miles to km"}]}  # fmt: skip
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: {")]  # fmt: skip
    calls = [
        e["milliwatt"]["tool_call"]["name"] for e in events if "tool_call" in e.get("milliwatt", {})
    ]
    assert calls == ["units.convert"]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    tracing.shutdown()


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_traces_follow_genai_conventions_and_continue_traceparent(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    call = ToolCall("1", "math.calculate", {"expression": "6 * 7"})
    model = FakeModel(
        scripted(ModelResponse("m", tool_calls=[call]), "It is 42."), name="smollm2-135m"
    )
    with live_app(tmp_path / "data", model, agents=AGENTS) as url:
        chat(url, "what is 2 + 3")  # not traced: tracing is off
        assert spans.get_finished_spans() == ()
        tracing.configure(exporter=spans)
        trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "milliwatt", "messages": [{"role": "user", "content": "six sevens?"}]},
            headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        ).json()
        wait_for(lambda: any(s.kind == SpanKind.SERVER for s in spans.get_finished_spans()))
    finished = spans.get_finished_spans()
    by_name = {s.name: s for s in finished}
    server = by_name["POST /v1/chat/completions"]
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["milliwatt.route"] == "model"
    assert {s.context.trace_id for s in finished} == {server.context.trace_id}
    waf = by_name["milliwatt.waf"]
    assert waf.parent.span_id == server.context.span_id
    assert waf.attributes["milliwatt.waf.blocked"] is False
    model_spans = [s for s in finished if s.name == "chat smollm2-135m"]
    assert len(model_spans) == 2 and all(s.kind == SpanKind.CLIENT for s in model_spans)
    first = model_spans[0].attributes
    assert first["gen_ai.operation.name"] == "chat"
    assert first["gen_ai.system"] == "milliwatt.fake"
    assert first["gen_ai.request.model"] == "smollm2-135m"
    assert first["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert model_spans[1].attributes["gen_ai.response.finish_reasons"] == ("stop",)
    usage = answer["usage"]
    assert (
        sum(s.attributes["gen_ai.usage.input_tokens"] for s in model_spans)
        == usage["prompt_tokens"]
    )
    assert (
        sum(s.attributes["gen_ai.usage.output_tokens"] for s in model_spans)
        == usage["completion_tokens"]
    )
    tool = by_name["execute_tool math.calculate"]
    assert tool.attributes["gen_ai.tool.name"] == "math.calculate"
    assert tool.parent.span_id == server.context.span_id


def test_a_refused_request_is_traced_with_the_rules_that_matched(
    url: str, spans: InMemorySpanExporter
) -> None:
    tracing.configure(exporter=spans)
    httpx.post(f"{url}/v1/chat/completions?q=<script>alert(1)</script>",
               json={"model": "milliwatt", "messages": []})  # fmt: skip
    wait_for(lambda: any(s.kind == SpanKind.SERVER for s in spans.get_finished_spans()))
    by_name = {s.name: s for s in spans.get_finished_spans()}
    assert by_name["milliwatt.waf"].attributes["milliwatt.waf.blocked"] is True
    assert "941100" in by_name["milliwatt.waf"].attributes["milliwatt.waf.rules"]
    server = by_name["POST /v1/chat/completions"]
    assert server.attributes["http.response.status_code"] == 403
    tool = chat(url, "what is 2 + 3").json()
    assert tool["milliwatt"]["route"] == "tool"
    wait_for(lambda: "execute_tool math.calculate" in {s.name for s in spans.get_finished_spans()})


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, self.headers["content-type"], body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_are_exported_over_otlp_when_an_endpoint_is_configured(tmp_path: Path) -> None:
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    telemetry = TelemetryConfig(otlp_endpoint=endpoint, service_name="mw-test")
    try:
        with live_app(tmp_path / "data", agents=AGENTS, telemetry=telemetry) as url:
            assert chat(url, "what is 2 + 3").status_code == 200
            # the request's span ends after its last byte: once it is in the ledger
            summary = f"{url}/console/api/summary"
            wait_for(lambda: httpx.get(summary).json()["requests"] == 1)
            tracing.shutdown()  # exports what the batch holds
    finally:
        collector.shutdown()
    assert _Collector.received, "no OTLP export arrived"
    path, content_type, body = _Collector.received[0]
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    resource = request.resource_spans[0].resource.attributes
    assert {a.key: a.value.string_value for a in resource}["service.name"] == "mw-test"
    names = {s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert {"POST /v1/chat/completions", "milliwatt.waf", "execute_tool math.calculate"} <= names


def test_each_api_request_is_one_json_log_line(url: str) -> None:
    stream = io.StringIO()
    handler = logs.configure(stream)
    try:
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "milliwatt", "messages": [{"role": "user", "content": "what is 2 + 3"}]},
        )
        httpx.get(f"{url}/console/api/summary")  # not an API request: no line
        wait_for(lambda: stream.getvalue().count("\n") >= 1)
    finally:
        logs.logging.getLogger("milliwatt").removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == answer.headers["x-request-id"]
    assert line["route"] == "tool" and line["status"] == 200 and line["agent"] == "milliwatt"
    assert line["path"] == "/v1/chat/completions" and line["duration_ms"] > 0
    assert line["tools"] == ["math.calculate"] and "ts" in line and line["level"] == "info"


def test_sessions_are_listed_for_the_chat(url: str) -> None:
    chat(url, "what is 2 + 3", user="web-1")
    chat(url, "Tell me about the sea.", user="web-1")
    listed = httpx.get(f"{url}/v1/sessions").json()["data"]
    assert [(s["id"], s["turns"]) for s in listed] == [("web-1", 2)]
    messages = httpx.get(f"{url}/v1/sessions/web-1").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    assert messages[1]["content"] == "2 + 3 = 5"
    assert httpx.get(f"{url}/v1/sessions/nobody").status_code == 404
    assert httpx.get(f"{url}/v1/sessions/bad%20name").status_code == 400


def test_pages_are_static_shells_with_a_strict_policy(url: str) -> None:
    for path in ("/", "/console"):
        page = httpx.get(f"{url}{path}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert '<script src="/static/' in page.text and "/console/api/" not in page.text
    assert httpx.get(f"{url}/static/vendor/uPlot.iife.min.js").status_code == 200
    assert "MIT" in httpx.get(f"{url}/static/vendor/uPlot.LICENSE").text


def test_telemetry_off_measures_and_stores_nothing(tmp_path: Path) -> None:
    off = TelemetryConfig(enabled=False)
    with live_app(tmp_path / "data", PacedModel(), agents=AGENTS, telemetry=off) as url:
        assert chat(url, "what is 2 + 3").status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 404
        assert httpx.get(f"{url}/console/api/summary").status_code == 404
        assert httpx.get(f"{url}/").status_code == 200  # the chat works without telemetry
    assert not (tmp_path / "data" / "requests.db").exists()


def test_an_egress_denial_is_counted_as_one(tmp_path: Path) -> None:
    call = ToolCall("1", "web.fetch", {"url": "http://127.0.0.1:9/admin"})
    model = FakeModel(
        scripted(ModelResponse("m", tool_calls=[call]), "I could not fetch it."),
        name="smollm2-135m",
    )
    with live_app(tmp_path / "data", model, agents=AGENTS) as url:
        answer = chat(url, "Fetch the admin page of my router.").json()
        (tool,) = answer["milliwatt"]["tools_called"]
        assert not tool["ok"] and "blocked by the egress policy" in tool["result"]
        summary = httpx.get(f"{url}/console/api/summary?window=1h").json()
        assert summary["denials"]["egress"] == 1
        assert summary["routes"]["model"] == 1  # answered, though its tool was refused
        seen = metrics(url)
        assert seen[("milliwatt_denials_total", (("kind", "egress"),))] == 1
        assert (
            seen[("milliwatt_tool_calls_total", (("outcome", "error"), ("tool", "web.fetch")))] == 1
        )
