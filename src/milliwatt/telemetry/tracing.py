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

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
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
    provider: TracerProvider | None = None
    processor: SpanProcessor | None = None
    resource: Resource | None = None
    scope: InstrumentationScope | None = None


_ids = RandomIdGenerator()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)


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
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from milliwatt import __version__

    resource = Resource.create({"service.name": service_name, "service.version": __version__})
    provider = TracerProvider(resource=resource)
    processor: SpanProcessor
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # without an endpoint the exporter reads the OTEL_EXPORTER_OTLP_* variables itself
        url = endpoint.rstrip("/") + "/v1/traces" if endpoint else None
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url))
    provider.add_span_processor(processor)  # the provider's shutdown flushes it
    _State.provider, _State.processor, _State.resource = provider, processor, resource
    _State.scope = InstrumentationScope("milliwatt", __version__)
    return provider


def shutdown() -> None:
    """Export what is pending and stop tracing."""
    if _State.provider is not None:
        _State.provider.shutdown()
    _State.provider = _State.processor = None


def export_request(record: RequestRecord) -> None:
    """The spans of a finished request, from the times it recorded; sets its trace id.

    They are handed to the span processor as finished spans: the SDK's live-span machinery
    (locks, attribute checks, context switches) has nothing to do for spans already over."""
    timing = record.trace
    processor = _State.processor
    if timing is None or processor is None:
        return
    parent = get_current_span(_propagator.extract(timing.headers)).get_span_context()
    if parent.is_valid and not parent.trace_flags.sampled:
        return  # the caller decided this trace is not recorded
    trace_id = parent.trace_id if parent.is_valid else _ids.generate_trace_id()
    attributes: dict[str, Any] = {
        "http.request.method": record.method,
        "url.path": record.path,
        "http.response.status_code": record.status,
    }
    if record.route:
        attributes["milliwatt.route"] = record.route
    if record.agent:
        attributes["milliwatt.agent"] = record.agent
    status = Status(StatusCode.ERROR) if record.status >= 500 else _UNSET
    server = _context(trace_id)
    spans = [
        _span(f"{record.method} {record.path}", server, parent if parent.is_valid else None,
              SpanKind.SERVER, attributes, timing.started_ns, timing.ended_ns, status)
    ]  # fmt: skip
    if timing.waf is not None:
        waf: dict[str, Any] = {"milliwatt.waf.blocked": record.waf_blocked}
        if record.waf_rules:
            waf["milliwatt.waf.rules"] = tuple(record.waf_rules)
        spans.append(_span("milliwatt.waf", _context(trace_id), server, SpanKind.INTERNAL,
                           waf, timing.waf[0], timing.waf[1], _UNSET))  # fmt: skip
    spans += [_step_span(step, trace_id, server) for step in timing.steps]
    for span in [*spans[1:], spans[0]]:  # the request's own span ends last, as live ones do
        processor.on_end(span)
    record.trace_id = format(trace_id, "032x")


def _context(trace_id: int) -> SpanContext:
    return SpanContext(trace_id, _ids.generate_span_id(), False, _SAMPLED)


def _span(
    name: str,
    context: SpanContext,
    parent: SpanContext | None,
    kind: SpanKind,
    attributes: dict[str, Any],
    start: int,
    end: int,
    status: Status,
) -> ReadableSpan:
    return ReadableSpan(
        name,
        context=context,
        parent=parent,
        resource=_State.resource,
        attributes=attributes,
        kind=kind,
        status=status,
        start_time=start,
        end_time=end,
        instrumentation_scope=_State.scope,
    )


def _step_span(step: LedgerEntry, trace_id: int, parent: SpanContext) -> ReadableSpan:
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
            attributes["gen_ai.response.finish_reasons"] = (step.finish_reason,)
    elif step.kind == "tool" or name not in ("router", "tool_selection"):
        # a router step that found its answer was that tool's call
        title = f"execute_tool {name}"
        attributes |= {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    else:
        title = f"milliwatt.{name}"
    status = _UNSET if step.ok else Status(StatusCode.ERROR)
    return _span(title, _context(trace_id), parent, kind, attributes, step.started_ns,
                 step.ended_ns, status)  # fmt: skip
