"""JSON log lines: our fields, whatever other libraries attach to their records."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import queue

from todo_operator.telemetry import logs


@dataclasses.dataclass
class _Settings:
    # Kopf attaches its settings (queues inside: neither JSON nor copyable) to its records.
    queue: object


def _line(**extra: object) -> dict[str, object]:
    stream = io.StringIO()
    logger = logging.getLogger("tests.telemetry.test_logs")
    handler = logs.handler(service="todo-operator", stream=stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("handler %s succeeded", "reconcile_task", extra=extra)
    finally:
        logger.removeHandler(handler)
    record: dict[str, object] = json.loads(stream.getvalue())
    return record


def test_a_kopf_record_becomes_one_json_line_with_our_fields_only() -> None:
    record = _line(
        settings=_Settings(queue.SimpleQueue()),
        k8s_ref={"kind": "Task", "namespace": "team-a", "name": "water-plants", "uid": "u"},
        k8s_skip=False,
        color_message="\x1b[32m...",
    )
    assert set(record) == set(logs.FIELDS)
    assert record["resource"] == "Task/team-a/water-plants"
    assert (record["level"], record["service"], record["event"]) == (
        "WARNING",
        "todo-operator",
        "handler reconcile_task succeeded",
    )


def test_our_own_fields_pass_through() -> None:
    record = _line(event_id="e-1", user="alice@example.com", resource="Reminder/team-a/r")
    assert (record["event_id"], record["user"], record["resource"]) == (
        "e-1",
        "alice@example.com",
        "Reminder/team-a/r",
    )
    assert record["trace_id"] is None  # no span active
