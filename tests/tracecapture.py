"""Spans of this test process, kept in memory while a test asks for them.

OpenTelemetry allows one tracer provider per process, so it is installed once
(the way ``todo-operator`` commands install theirs, through
``tracing.configure``) with a processor that keeps finished spans only while a
test is capturing: the rest of the suite pays nothing.
"""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from todo_operator.telemetry import tracing
from todo_operator.telemetry.settings import TelemetrySettings


class Capture(SpanProcessor):
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.capturing = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.capturing:
            self.exporter.export([span])

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


_capture: Capture | None = None
_lock = threading.Lock()


def capture() -> Capture:
    global _capture
    with _lock:
        if _capture is None:
            _capture = Capture()
            installed = trace.get_tracer_provider()
            if isinstance(installed, TracerProvider):
                # A command run in this process (a CLI test) installed the provider already.
                installed.add_span_processor(_capture)
            else:
                tracing.configure(
                    TelemetrySettings(zipkin_endpoint=None, trace_sample_ratio=1.0),
                    service="todo-tests",
                    processors=(_capture,),
                )
    return _capture
