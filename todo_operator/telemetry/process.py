"""Telemetry for one process: its logs and its traces, configured once by its command."""

from __future__ import annotations

from pydantic import ValidationError

from todo_operator.telemetry import logs, tracing
from todo_operator.telemetry.settings import TelemetrySettings


class TelemetryError(ValueError):
    """A ``TODO_*`` telemetry setting is wrong (one readable line)."""


def configure_process(*, service: str, level: str) -> TelemetrySettings:
    """Logs to stdout in ``TODO_LOG_FORMAT``; traces to ``TODO_ZIPKIN_ENDPOINT`` if set."""
    try:
        settings = TelemetrySettings()
    except ValidationError as error:
        raise TelemetryError(
            "; ".join(f"TODO_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        ) from None
    logs.configure(service=service, level=level, format=settings.log_format)
    tracing.configure(settings, service=service)
    return settings
