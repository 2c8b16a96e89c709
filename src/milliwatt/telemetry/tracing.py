"""OpenTelemetry traces, following the GenAI semantic conventions.

One span per request (continuing an incoming `traceparent`), one for the WAF's verdict,
one per model call (`chat {model}`, gen_ai.* attributes) and one per tool call
(`execute_tool {tool}`). A request records only when each part ran; its spans are made
from those times by the telemetry thread once the answer is out, so tracing adds a few
clock reads to a request, not the SDK's span bookkeeping.

Nothing is recorded or exported unless tracing is configured: `[telemetry] otlp_endpoint`,
the standard OTEL_EXPORTER_OTLP_ENDPOINT variables, or an exporter handed in (tests use
the SDK's in-memory one).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import (
    NoOpTracer,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from milliwatt.telemetry.ledger import LedgerEntry
from milliwatt.telemetry.records import RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROPAGATED = ("traceparent", "tracestate")
_propagator = TraceContextTextMapPropagator()


class _State:
    tracer: Tracer = NoOpTracer()
    provider: TracerProvider | None = None


def enabled() -> bool:
    return _State.provider is not None


def configure(
    endpoint: str | None = None,
    *,
    exporter: SpanExporter | None = None,
    service_name: str = "milliwatt",
) -> TracerProvider | None:
    """Start tracing when there is somewhere to send spans; otherwise turn it off.

    `endpoint` is the OTLP/HTTP base URL (…:4318): spans go to its /v1/traces in batches.
    `exporter` (tests) receives each span as it ends."""
    shutdown()
    if exporter is None and endpoint is None and not any(map(os.environ.get, _ENDPOINT_VARIABLES)):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from milliwatt import __version__

    resource = Resource.create({"service.name": service_name, "service.version": __version__})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # without an endpoint the exporter reads the OTEL_EXPORTER_OTLP_* variables itself
        url = endpoint.rstrip("/") + "/v1/traces" if endpoint else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    _State.provider = provider
    _State.tracer = provider.get_tracer("milliwatt", __version__)
    return provider


def shutdown() -> None:
    """Export what is pending and stop tracing."""
    if _State.provider is not None:
        _State.provider.shutdown()
    _State.provider = None
    _State.tracer = NoOpTracer()


def export_request(record: RequestRecord) -> None:
    """The spans of a finished request, from the times it recorded; sets its trace id."""
    timing = record.trace
    if timing is None or _State.provider is None:
        return
    tracer = _State.tracer
    attributes: dict[str, Any] = {
        "http.request.method": record.method,
        "url.path": record.path,
        "http.response.status_code": record.status,
    }
    if record.route:
        attributes["milliwatt.route"] = record.route
    if record.agent:
        attributes["milliwatt.agent"] = record.agent
    server = tracer.start_span(
        f"{record.method} {record.path}",
        context=_propagator.extract(timing.headers),
        kind=SpanKind.SERVER,
        attributes=attributes,
        start_time=timing.started_ns,
    )
    if record.status >= 500:
        server.set_status(Status(StatusCode.ERROR))
    inside = set_span_in_context(server)
    if timing.waf is not None:
        waf: dict[str, Any] = {"milliwatt.waf.blocked": record.waf_blocked}
        if record.waf_rules:
            waf["milliwatt.waf.rules"] = record.waf_rules
        span = tracer.start_span(
            "milliwatt.waf", context=inside, attributes=waf, start_time=timing.waf[0]
        )
        span.end(end_time=timing.waf[1])
    for step in timing.steps:
        _step_span(tracer, step, inside)
    server.end(end_time=timing.ended_ns)
    context = server.get_span_context()
    record.trace_id = format(context.trace_id, "032x") if context.is_valid else None


def _step_span(tracer: Tracer, step: LedgerEntry, parent: Any) -> Span:
    name = step.name
    attributes: dict[str, Any] = {"milliwatt.energy.joules_est": round(step.joules_est, 6)}
    kind = SpanKind.INTERNAL
    if step.kind == "model":
        title, kind = f"chat {name}", SpanKind.CLIENT
        attributes |= {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": step.system or "unknown",
            "gen_ai.provider.name": step.system or "unknown",
            "gen_ai.request.model": name,
            "gen_ai.response.model": name,
            "gen_ai.usage.input_tokens": step.prompt_tokens,
            "gen_ai.usage.output_tokens": step.completion_tokens,
        }
        if step.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [step.finish_reason]
    elif step.kind == "tool" or name not in ("router", "tool_selection"):
        # a router step that found its answer was that tool's call
        title = f"execute_tool {name}"
        attributes |= {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    else:
        title = f"milliwatt.{name}"
    span = tracer.start_span(
        title, context=parent, kind=kind, attributes=attributes, start_time=step.started_ns
    )
    if not step.ok:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=step.ended_ns)
    return span
