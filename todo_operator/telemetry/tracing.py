"""OpenTelemetry tracing: one trace from a REST request to the consumer of its event.

The trace context travels as a W3C ``traceparent``:

* REST API → custom resource: in the ``todo.dev/traceparent`` annotation the
  API writes with the change;
* custom resource → operator: the reconcile span's parent is that annotation
  when the annotation came with the change being handled (a create, or an
  update that set it), so a later, unrelated edit starts a trace of its own;
* operator → occurrence Task: the annotation on the Task it creates;
* operator → outbox → relay: the ``traceparent`` column of the outbox row,
  written in the same transaction as the change;
* relay → Dapr → consumer: the CloudEvent's ``traceparent`` extension.

Spans are exported to Zipkin when ``TODO_ZIPKIN_ENDPOINT`` is set, sampled by
``TODO_TRACE_SAMPLE_RATIO`` for new traces (a continued trace follows its
parent's decision).
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from todo_operator.telemetry.settings import TelemetrySettings

TRACEPARENT_ANNOTATION: Final = "todo.dev/traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()

tracer = trace.get_tracer("todo_operator")


def configure(
    settings: TelemetrySettings, *, service: str, processors: tuple[SpanProcessor, ...] = ()
) -> TracerProvider:
    """Install this process' tracer provider (once per process: OpenTelemetry's rule)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    if settings.zipkin_endpoint:
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        provider.add_span_processor(BatchSpanProcessor(ZipkinExporter(endpoint=settings.zipkin_endpoint)))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    # A short-lived process (a notify Job) exports what it has before it exits.
    atexit.register(provider.shutdown)
    return provider


@contextlib.contextmanager
def database_span(operation: str) -> Iterator[trace.Span]:
    """A span for one PostgreSQL transaction of the record (named for what it writes)."""
    with tracer.start_as_current_span(
        "postgresql transaction",
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system.name": "postgresql", "db.operation.name": operation},
    ) as span:
        yield span


def current_traceparent() -> str | None:
    """The active span's context as a ``traceparent`` value, or None outside any span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def traceparent_of(span: trace.Span) -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def context_from(traceparent: str | None) -> otel_context.Context | None:
    """The context a ``traceparent`` value names (None if absent or malformed)."""
    if not traceparent:
        return None
    context = _PROPAGATOR.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def annotation_of(body: Mapping[str, Any]) -> str | None:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(TRACEPARENT_ANNOTATION)
    return value if isinstance(value, str) else None


def annotate(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an object about to be written, carrying the active trace context (if any)."""
    annotated = dict(manifest)
    traceparent = current_traceparent()
    if traceparent is not None:
        metadata = dict(annotated.get("metadata") or {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}), TRACEPARENT_ANNOTATION: traceparent}
        annotated["metadata"] = metadata
    return annotated


def trace_id() -> str | None:
    """The active trace id as 32 hex digits (for logs), or None."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
