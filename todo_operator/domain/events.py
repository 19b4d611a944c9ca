"""The facts the operator records, as events bound for the outbox.

An event's id is derived from what happened (a UUIDv5 of its idempotency
key), never drawn at random: a handler that runs again after a crash
produces the same ids, the outbox keeps one row each, and consumers that
drop duplicates by id see each fact once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "task.created",
    "task.updated",
    "task.completed",
    "task.overdue",
    "task.skipped",
    "task.deleted",
    "recurringtask.created",
    "recurringtask.updated",
    "recurringtask.ended",
    "recurringtask.deleted",
    "reminder.scheduled",
    "reminder.sent",
    "reminder.failed",
    "reminder.cancelled",
]

TOPIC_TASK_EVENTS = "task-events"
TOPIC_REMINDERS = "reminders"
# Compact change records for live clients, derived from task events by the relay.
TOPIC_TASK_UPDATES = "task-updates"
_EVENT_ID_NAMESPACE = uuid.UUID("6f1d6b8e-3c1e-5c53-9a51-7f3f0e6f2a10")


@dataclass(frozen=True, kw_only=True)
class Event:
    type: EventType
    subject: str  # "<namespace>/<name>"
    partition_key: str  # the owner: Kafka partitions by user, so one user's events stay in order
    key: str  # what makes this fact unique, e.g. "task.completed:<uid>:<instant>"
    data: dict[str, Any] = field(default_factory=dict)
    # The W3C trace context of the change (``00-<trace-id>-<span-id>-<flags>``), when one is active.
    traceparent: str | None = None

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(_EVENT_ID_NAMESPACE, self.key)

    @property
    def topic(self) -> str:
        return TOPIC_REMINDERS if self.type.startswith("reminder.") else TOPIC_TASK_EVENTS


@dataclass(frozen=True, kw_only=True)
class Seen:
    """An object as a reconcile sees it: what decides which lifecycle events it records."""

    subject: str
    uid: str
    generation: int
    observed_generation: int | None  # from its status: None until a reconcile wrote one
    owner: str

    def event(self, type_: EventType, *, key: str, data: dict[str, Any]) -> Event:
        """The fact ``type_`` about this object, identified by ``key`` (see the module docstring)."""
        return Event(type=type_, subject=self.subject, partition_key=self.owner, key=key, data=data)


def lifecycle_events(
    kind: Literal["task", "recurringtask"], seen: Seen, *, data: dict[str, Any]
) -> list[Event]:
    """``<kind>.created`` the first time an object is recorded, ``<kind>.updated`` on a new generation.

    An object edited before any status said what was seen gets both: an earlier attempt
    may have recorded ``created`` (the same id, so not again) with the older spec and then
    failed to write the status (F3); only ``updated`` can then carry the edit to consumers.
    """
    created: EventType = "task.created" if kind == "task" else "recurringtask.created"
    updated: EventType = "task.updated" if kind == "task" else "recurringtask.updated"
    found: list[tuple[EventType, str]] = []
    if seen.observed_generation is None:
        found.append((created, f"{created}:{seen.uid}"))
    if seen.generation > (1 if seen.observed_generation is None else seen.observed_generation):
        found.append((updated, f"{updated}:{seen.uid}:{seen.generation}"))
    return [seen.event(type_, key=key, data=data) for type_, key in found]
