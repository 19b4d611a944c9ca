"""Logs as JSON lines on stdout: what a log pipeline (Loki, Elasticsearch) indexes without parsing.

Every line has the same keys: ``timestamp``, ``level``, ``service``,
``logger``, ``event`` (the message), ``resource`` (``Kind/namespace/name``:
taken from Kopf's per-object loggers, or passed as ``extra``), ``event_id``
(an outbox/CloudEvent id, when the line is about one), ``trace_id`` (the
active span's, so a line leads to its trace in Zipkin) and ``user`` (the
owner, when the line is about one user's object). Absent values are null.

What is never logged: secrets (settings keep them as ``SecretStr``), tokens,
and e-mail bodies (delivery logs name the reminder, not its text).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from todo_operator.telemetry import tracing

FIELDS: Final = (
    "timestamp",
    "level",
    "service",
    "logger",
    "event",
    "resource",
    "event_id",
    "trace_id",
    "user",
)


class _Context(logging.Filter):
    """Adds the fields every line carries; never drops a record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.trace_id = tracing.trace_id()
        if getattr(record, "resource", None) is None:
            ref: dict[str, Any] | None = getattr(record, "k8s_ref", None)
            record.resource = (
                "/".join(
                    str(part) for part in (ref.get("kind"), ref.get("namespace"), ref.get("name")) if part
                )
                if ref
                else None
            )
        for key in ("event_id", "user"):
            if not hasattr(record, key):
                setattr(record, key, None)
        return True


class _Formatter(JsonFormatter):
    """Our fields only: other libraries' extras are not ours to publish, nor always JSON
    (Kopf attaches its settings object to every record)."""

    _KEPT = frozenset(FIELDS) | {"exc_info", "stack_info"}

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in log_data.items() if key in self._KEPT}


def json_formatter() -> logging.Formatter:
    return _Formatter(
        "%(levelname)s %(service)s %(name)s %(message)s %(resource)s %(event_id)s %(trace_id)s %(user)s",
        rename_fields={"levelname": "level", "name": "logger", "message": "event"},
        timestamp=True,  # ISO 8601 in UTC, with microseconds
        json_ensure_ascii=False,
    )


def handler(
    *,
    service: str,
    format: Literal["json", "text"] = "json",  # the setting's own name
    stream: TextIO | None = None,
) -> logging.Handler:
    """A handler writing ``service``'s records to ``stream`` (stdout) in the chosen format."""
    writer = logging.StreamHandler(stream or sys.stdout)
    writer.addFilter(_Context(service))
    if format == "json":
        writer.setFormatter(json_formatter())
    else:
        writer.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    return writer


def configure(*, service: str, level: str = "INFO", format: Literal["json", "text"] = "json") -> None:
    """Make :func:`handler` the process' only log handler (every logger propagates to it)."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler(service=service, format=format))
    root.setLevel(level)
