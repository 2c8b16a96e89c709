"""When traces are recorded and exported, and what a request's spans carry."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from milliwatt.telemetry import tracing
from milliwatt.telemetry.ledger import LedgerEntry
from milliwatt.telemetry.records import RequestRecord, RequestTiming

VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture(autouse=True)
def off() -> Iterator[None]:
    yield
    tracing.shutdown()


def traced(headers: dict[str, str] | None = None) -> RequestRecord:
    now = time.time_ns()
    step = LedgerEntry("model", "small", prompt_tokens=12, completion_tokens=3,
                       system="llama.cpp", finish_reason="length", started_ns=now + 10,
                       ended_ns=now + 900)  # fmt: skip
    record = RequestRecord("id", 0.0, "POST", "/v1/chat/completions", 200, route="model")
    record.trace = RequestTiming(now, headers or {}, now + 1000, (now + 1, now + 5), [step])
    return record


def test_nothing_is_recorded_without_somewhere_to_send_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert tracing.configure() is None and not tracing.enabled()
    record = traced()
    tracing.export_request(record)
    assert record.trace_id is None


@pytest.mark.parametrize("variable", VARIABLES)
def test_the_standard_variables_turn_export_on(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "http://127.0.0.1:4318")
    assert tracing.configure() is not None and tracing.enabled()


def test_spans_of_a_request() -> None:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter)
    record = traced()
    tracing.export_request(record)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"POST /v1/chat/completions", "milliwatt.waf", "chat small"}
    server, model = spans["POST /v1/chat/completions"], spans["chat small"]
    assert server.parent is None and record.trace_id == format(server.context.trace_id, "032x")
    assert model.parent.span_id == server.context.span_id
    assert (model.start_time, model.end_time) == (record.trace.started_ns + 10,
                                                  record.trace.started_ns + 900)  # fmt: skip
    assert model.attributes["gen_ai.usage.input_tokens"] == 12
    assert model.attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert model.attributes["gen_ai.provider.name"] == "llama.cpp"
    assert server.resource.attributes["service.name"] == "milliwatt"


def test_a_caller_that_does_not_sample_is_followed() -> None:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter)
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    tracing.export_request(traced({"traceparent": unsampled}))
    assert exporter.get_finished_spans() == ()
    tracing.export_request(traced({"traceparent": "not a traceparent"}))  # ignored: a new trace
    assert len(exporter.get_finished_spans()) == 3
