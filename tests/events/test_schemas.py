"""The event contract: CloudEvents 1.0 envelopes, versioned data, JSON Schemas in docs/events/."""

from __future__ import annotations

import json
import pathlib
from datetime import UTC, datetime
from typing import get_args

import jsonschema
import pytest

from todo_operator.domain import tasks
from todo_operator.domain.events import EventType
from todo_operator.events import schemas

DOCS = pathlib.Path(__file__).parents[2] / "docs" / "events"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SAMPLE_DATA = {
    "task": {"title": "Renew passport", "owner": "alice@example.com", "priority": "urgent", "phase": "Open"},
    "recurringtask": {"title": "Weekly review", "owner": "alice@example.com", "phase": "Active"},
    "reminder": {"task": "renew-passport", "owner": "alice@example.com", "fireAt": "2026-12-09T18:00:00Z"},
}
# Types whose data differs from their kind's: as the operator builds it.
SAMPLE_BY_TYPE = {
    "task.skipped": tasks.skipped_event(
        "team-a/review-20261207t0900",
        uid="5a1e6a52-0d2c-4b43-9a8e-2f0f4f6e7d10",
        spec={"title": "Weekly review", "owner": "alice@example.com", "dueAt": "2026-12-07T08:00:00Z"},
        series="review",
        occurrence=3,
    ).data,
}


def test_every_operator_event_type_has_a_schema_and_a_topic() -> None:
    assert set(get_args(EventType)) | {schemas.TASK_UPDATE_TYPE} == set(schemas.KINDS)
    assert {kind.topic for kind in schemas.KINDS.values()} == set(schemas.TOPICS)


def test_json_schemas_in_docs_are_in_sync() -> None:
    """Regenerate with: .venv/bin/python -m todo_operator.events.schemas docs/events"""
    expected = schemas.json_schemas()
    on_disk = {path.name: json.loads(path.read_text()) for path in DOCS.glob("*.json")}
    assert on_disk == expected


@pytest.mark.parametrize("event_type", sorted(get_args(EventType)))
def test_each_type_builds_a_valid_cloudevent(event_type: str) -> None:
    kind = event_type.split(".")[0]
    data = {} if event_type.endswith(".deleted") else SAMPLE_BY_TYPE.get(event_type, SAMPLE_DATA[kind])
    event = schemas.build(
        event_id="id-1",
        event_type=event_type,
        subject="team-a/renew-passport",
        partition_key="alice@example.com",
        time=NOW,
        data=data,
        traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
    )
    jsonschema.validate(event, schemas.json_schemas()["cloudevent.json"])
    data_schema = schemas.json_schemas()[f"{event_type}.v1.json"]
    jsonschema.validate(event["data"], data_schema)
    assert event["dataschema"] == data_schema["$id"]
    assert event["source"].startswith("/apis/todo.dev/v1alpha1/namespaces/team-a/")
    assert event["traceparent"].startswith("00-")
    assert schemas.parse(event).id == "id-1"


def test_an_event_that_does_not_fit_its_schema_is_invalid() -> None:
    with pytest.raises(schemas.InvalidEvent, match=r"task\.created"):
        schemas.build(
            event_id="x",
            event_type="task.created",
            subject="team-a/t",
            partition_key="alice@example.com",
            time=NOW,
            data={"title": "no owner"},
        )
    with pytest.raises(schemas.InvalidEvent, match="unknown event type"):
        schemas.build(
            event_id="x", event_type="task.exploded", subject="a/b", partition_key="p", time=NOW, data={}
        )


def test_a_malformed_traceparent_is_left_out_not_fatal() -> None:
    event = schemas.build(
        event_id="x",
        event_type="task.deleted",
        subject="team-a/t",
        partition_key="alice@example.com",
        time=NOW,
        data={},
        traceparent="not-a-trace",
    )
    assert "traceparent" not in event


def test_task_updates_are_compact_and_deterministic() -> None:
    event = schemas.build(
        event_id="e-1",
        event_type="task.completed",
        subject="team-a/t",
        partition_key="alice@example.com",
        time=NOW,
        data={**SAMPLE_DATA["task"], "phase": "Completed"},
    )
    update = schemas.task_update(event)
    assert update is not None
    assert update["type"] == "task.changed"
    assert update["data"] == {
        "change": "completed",
        "owner": "alice@example.com",
        "title": "Renew passport",
        "phase": "Completed",
    }
    assert update["id"] == schemas.task_update(event)["id"] != event["id"]  # type: ignore[index]
    schemas.parse(update)


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (
            "reminder.scheduled",
            {"task": "renew-passport", "fireAt": "2026-12-09T17:00:00+00:00", "delivery": "inline"},
        ),
        (
            "reminder.sent",
            {
                "task": "renew-passport",
                "fireAt": "2026-12-09T17:00:00+00:00",
                "attempts": 1,
                "reason": "Late",
            },
        ),
        ("reminder.cancelled", {"reason": "TaskCompleted"}),
    ],
)
def test_reminder_events_as_the_operator_records_them_are_valid(
    event_type: str, data: dict[str, object]
) -> None:
    event = schemas.build(
        event_id="r-1",
        event_type=event_type,
        subject="team-a/r",
        partition_key="alice@example.com",
        time=NOW,
        data=data,
    )
    assert schemas.parse(event).data["task" if "task" in data else "reason"]
