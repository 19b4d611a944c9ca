"""The CloudEvents we publish: one envelope, one versioned ``data`` model per event type.

Why pydantic models rather than the ``cloudevents`` SDK: the SDK's event is a
loosely typed attribute bag, and what we need from a schema library is a
typed model per event type, validation of what we are about to publish (a row
that does not fit is a poison event, caught before Kafka sees it) and JSON
Schema export for the consumers (``docs/events/``). pydantic, already a
dependency, does all three; the envelope is small (CloudEvents 1.0 structured
JSON mode, section 3 of the JSON format spec) and spelled out here once.

Versioning: each type's ``data`` has a version (``v1``) that appears in the
event's ``dataschema`` URI. A change that breaks consumers adds ``v2`` next
to ``v1`` rather than editing it.

The ``task-updates`` topic carries a compact change record for live clients,
derived from each task event (same partition key, its own deterministic id).
"""

from __future__ import annotations

import builtins
import functools
import json
import pathlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from todo_operator.domain.events import (
    TOPIC_REMINDERS,
    TOPIC_TASK_EVENTS,
    TOPIC_TASK_UPDATES,
)

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# Dapr's content type for an event that already is a CloudEvent (it is then not wrapped again).
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
SCHEMA_BASE = "https://todo.dev/schemas/events"
TASK_UPDATE_TYPE = "task.changed"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_UPDATE_ID_NAMESPACE = uuid.UUID("0c5a3e0e-8f0b-5b5e-9d5e-2b1f3f7d9a41")


class _Data(BaseModel):
    # Unknown fields pass through: a producer may add a field before consumers know it.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TaskDataV1(_Data):
    """task.created, task.updated, task.completed, task.overdue."""

    title: str
    owner: str
    priority: Literal["low", "medium", "high", "urgent"]
    phase: Literal["Open", "Overdue", "Completed"]


class RecurringTaskDataV1(_Data):
    """recurringtask.created, recurringtask.updated, recurringtask.ended."""

    title: str
    owner: str
    rule: str | None = None
    phase: Literal["Active", "Suspended", "Ended"]
    current_task: str | None = Field(default=None, alias="currentTask")
    next_due_at: datetime | None = Field(default=None, alias="nextDueAt")


class SkippedDataV1(_Data):
    """task.skipped: an occurrence its series moved past without a completion (``task.deleted`` follows)."""

    owner: str
    title: str | None = None
    recurring_task: str = Field(alias="recurringTask", description="the series, in the event's namespace")
    occurrence: int | None = Field(default=None, ge=1)
    due_at: datetime | None = Field(default=None, alias="dueAt")


class DeletedDataV1(_Data):
    """task.deleted, recurringtask.deleted: the object is gone; what is known is optional."""

    title: str | None = None
    owner: str | None = None


class ReminderDataV1(_Data):
    """reminder.scheduled, reminder.sent, reminder.failed, reminder.cancelled.

    The owner is the event's ``partitionkey``; a cancellation may know nothing but its reason.
    """

    task: str | None = Field(default=None, description="the Task's name, in the event's namespace")
    owner: str | None = None
    to: str | None = None
    fire_at: datetime | None = Field(default=None, alias="fireAt")
    delivery: str | None = Field(default=None, description="cronjob or inline")
    attempts: int | None = Field(default=None, ge=0)
    reason: str | None = Field(default=None, description="e.g. OnTime, Late, Missed, TaskCompleted")
    error: str | None = None


# What a live list needs to refresh a row. ``task.skipped`` derives no record: the
# ``task.deleted`` recorded with it says the same to a list (the object is gone).
TaskChange = Literal["created", "updated", "completed", "overdue", "deleted"]


class TaskUpdateDataV1(_Data):
    """The compact change record on ``task-updates``: enough for a live list to refresh one row."""

    change: TaskChange
    owner: str
    title: str | None = None
    phase: str | None = None


@dataclass(frozen=True, kw_only=True)
class EventKind:
    name: str
    topic: str
    data_model: builtins.type[_Data]
    version: str = "v1"

    @property
    def dataschema(self) -> str:
        return f"{SCHEMA_BASE}/{self.name}/{self.version}.json"


KINDS: dict[str, EventKind] = {
    kind.name: kind
    for kind in [
        *(
            EventKind(name=f"task.{what}", topic=TOPIC_TASK_EVENTS, data_model=TaskDataV1)
            for what in ("created", "updated", "completed", "overdue")
        ),
        EventKind(name="task.skipped", topic=TOPIC_TASK_EVENTS, data_model=SkippedDataV1),
        EventKind(name="task.deleted", topic=TOPIC_TASK_EVENTS, data_model=DeletedDataV1),
        *(
            EventKind(name=f"recurringtask.{what}", topic=TOPIC_TASK_EVENTS, data_model=RecurringTaskDataV1)
            for what in ("created", "updated", "ended")
        ),
        EventKind(name="recurringtask.deleted", topic=TOPIC_TASK_EVENTS, data_model=DeletedDataV1),
        *(
            EventKind(name=f"reminder.{what}", topic=TOPIC_REMINDERS, data_model=ReminderDataV1)
            for what in ("scheduled", "sent", "failed", "cancelled")
        ),
        EventKind(name=TASK_UPDATE_TYPE, topic=TOPIC_TASK_UPDATES, data_model=TaskUpdateDataV1),
    ]
}
TOPICS = (TOPIC_TASK_EVENTS, TOPIC_REMINDERS, TOPIC_TASK_UPDATES)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode, with our two extensions."""

    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1, description="URI-reference: the collection the object lives in")
    type: str = Field(min_length=1)
    subject: str = Field(pattern=r"^[^/]+/[^/]+$", description="<namespace>/<name>")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    partitionkey: str = Field(min_length=1, description="the owner: Kafka partitions by user")
    traceparent: str | None = Field(default=None, pattern=_TRACEPARENT.pattern)
    data: dict[str, Any]


class InvalidEvent(ValueError):
    """The recorded event does not fit its schema: publishing it would only fail later."""


@functools.lru_cache(maxsize=1024)  # a few types times a few namespaces, once per event
def source_for(event_type: str, namespace: str) -> str:
    plural = {"task": "tasks", "recurringtask": "recurringtasks", "reminder": "reminders"}[
        event_type.split(".", 1)[0]
    ]
    return f"/apis/todo.dev/v1alpha1/namespaces/{namespace}/{plural}"


def build(
    *,
    event_id: str,
    event_type: str,
    subject: str,
    partition_key: str,
    time: datetime,
    data: dict[str, Any],
    traceparent: str | None = None,
) -> dict[str, Any]:
    """The CloudEvent (a JSON-ready dict) of a recorded event; :class:`InvalidEvent` if it cannot be one."""
    kind = KINDS.get(event_type)
    if kind is None:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    namespace, _, name = subject.partition("/")
    if not namespace or not name or "/" in name:
        raise InvalidEvent(f"{event_type} {event_id}: subject {subject!r} is not <namespace>/<name>")
    if not partition_key:
        raise InvalidEvent(f"{event_type} {event_id}: no partition key (owner)")
    try:
        checked = kind.data_model.model_validate(data)
    except ValidationError as error:
        raise InvalidEvent(f"{event_type} {event_id}: {error.errors()[0]['msg']}") from error
    # Built as a plain dict, not through the CloudEvent model: this runs for every event the
    # relay publishes, and the envelope is ours by construction (the tests check it against
    # the model and the exported JSON Schema).
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source_for(event_type, namespace),
        "type": event_type,
        "subject": subject,
        "time": time.isoformat(),
        "datacontenttype": CONTENT_TYPE,
        "dataschema": kind.dataschema,
        "partitionkey": partition_key,
        "data": checked.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    # A malformed trace context is left out rather than failing the event.
    if traceparent and _TRACEPARENT.match(traceparent):
        event["traceparent"] = traceparent
    return event


def task_update(event: dict[str, Any]) -> dict[str, Any] | None:
    """The compact ``task-updates`` record derived from a task event (None for other events)."""
    kind, _, change = event["type"].partition(".")
    if kind != "task" or change not in get_args(TaskChange):
        return None
    data = event.get("data") or {}
    update = {"change": change, "owner": data.get("owner") or event["partitionkey"]}
    for field_name in ("title", "phase"):
        if data.get(field_name) is not None:
            update[field_name] = data[field_name]
    derived = dict(event)
    derived.update(
        id=str(uuid.uuid5(_UPDATE_ID_NAMESPACE, event["id"])),
        type=TASK_UPDATE_TYPE,
        dataschema=KINDS[TASK_UPDATE_TYPE].dataschema,
        data=update,
    )
    return derived


def parse(delivered: dict[str, Any]) -> CloudEvent:
    """A delivered event, checked against the envelope and its type's data model."""
    # Dapr adds its own attributes (topic, pubsubname, traceid, ...) to what it delivers.
    known = {name: value for name, value in delivered.items() if name in CloudEvent.model_fields}
    event = CloudEvent.model_validate(known)
    kind = KINDS.get(event.type)
    if kind is None:
        raise InvalidEvent(f"unknown event type {event.type!r}")
    kind.data_model.model_validate(event.data)
    return event


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for ``docs/events/`` (one envelope, one file per type and version)."""
    schemas: dict[str, dict[str, Any]] = {"cloudevent.json": CloudEvent.model_json_schema()}
    for kind in KINDS.values():
        schema = kind.data_model.model_json_schema(by_alias=True)
        schema["$id"] = kind.dataschema
        schema["title"] = f"{kind.name} data ({kind.version})"
        schema["x-topic"] = kind.topic
        schemas[f"{kind.name}.{kind.version}.json"] = schema
    return schemas


def write_json_schemas(folder: pathlib.Path) -> list[pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = folder / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m todo_operator.events.schemas docs/events
    import sys

    for path in write_json_schemas(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")):
        print(path)
