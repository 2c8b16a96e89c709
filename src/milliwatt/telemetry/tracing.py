"""OpenTelemetry traces, following the GenAI semantic conventions.

One span per request (continuing an incoming `traceparent`), one for the WAF's verdict,
one per model call (`chat {model}`, gen_ai.* attributes) and one per tool call
(`execute_tool {tool}`). Nothing is created or exported unless tracing is configured:
`[telemetry] otlp_endpoint`, the standard OTEL_EXPORTER_OTLP_ENDPOINT variables, or an
exporter handed in (tests use the SDK's in-memory one). Unconfigured, each helper is one
boolean test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import NoOpTracer, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
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


@contextmanager
def request_span(method: str, path: str, headers: Mapping[str, str]) -> Iterator[Span | None]:
    """The server span of one HTTP request, a child of the caller's `traceparent` if any."""
    if _State.provider is None:
        yield None
        return
    parent = _propagator.extract(headers)
    attributes = {"http.request.method": method, "url.path": path}
    with _State.tracer.start_as_current_span(
        f"{method} {path}", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """An internal span (the WAF's verdict, the router); None when tracing is off."""
    if _State.provider is None:
        yield None
        return
    with _State.tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


@contextmanager
def step_span(kind: str, name: str) -> Iterator[Span | None]:
    """The span of one ledger step: a model call, a tool call or a routing step."""
    if _State.provider is None:
        yield None
        return
    if kind == "model":
        title, span_kind = f"chat {name}", SpanKind.CLIENT
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": name}
    elif kind == "tool":
        title, span_kind = f"execute_tool {name}", SpanKind.INTERNAL
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    else:
        title, span_kind, attributes = f"milliwatt.{name}", SpanKind.INTERNAL, {}
    with _State.tracer.start_as_current_span(
        title, kind=span_kind, attributes=attributes
    ) as current:
        yield current


def end_step(
    current: Span | None,
    kind: str,
    name: str,
    *,
    system: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str | None,
    joules_est: float,
    ok: bool = True,
) -> None:
    """What a step turned out to be, on its span (before the span ends)."""
    if current is None:
        return
    if kind == "model":
        current.set_attributes(
            {
                "gen_ai.system": system or "unknown",
                "gen_ai.provider.name": system or "unknown",
                "gen_ai.response.model": name,
                "gen_ai.usage.input_tokens": prompt_tokens,
                "gen_ai.usage.output_tokens": completion_tokens,
            }
        )
        if finish_reason:
            current.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
    elif kind == "router" and name not in ("router", "tool_selection"):
        # the router answered with a tool: this step was that tool's call
        current.update_name(f"execute_tool {name}")
        current.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name})
    current.set_attribute("milliwatt.energy.joules_est", round(joules_est, 6))
    if not ok:
        current.set_status(Status(StatusCode.ERROR))


def trace_id(current: Span | None) -> str | None:
    if current is None:
        return None
    context = current.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
