"""What a Task's status should say, and which events it records, given its spec and the current instant."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from todo_operator.domain.events import Event, Seen, lifecycle_events
from todo_operator.domain.ownership import controller_of
from todo_operator.domain.resources import TaskPhase, TaskSpec


def task_phase(spec: TaskSpec, *, now: datetime) -> TaskPhase:
    """Completed wins; otherwise Overdue once ``dueAt`` has passed; otherwise Open."""
    if spec.completed:
        return "Completed"
    if spec.due_at is not None and spec.due_at <= now:
        return "Overdue"
    return "Open"


def task_events(seen: Seen, spec: TaskSpec, *, phase: TaskPhase, previous: TaskPhase | None) -> list[Event]:
    """The events of a reconcile that finds ``phase`` where the status said ``previous``.

    Ids follow from the fact (overdue for this due time, completed at this generation),
    so a reconcile run again appends nothing twice.
    """
    data = {"title": spec.title, "owner": spec.owner, "priority": spec.priority, "phase": phase}
    events = lifecycle_events("task", seen, data=data)
    if phase == "Overdue" and previous != "Overdue":
        due = spec.due_at.isoformat() if spec.due_at else ""
        events.append(seen.event("task.overdue", key=f"task.overdue:{seen.uid}:{due}", data=data))
    if phase == "Completed" and previous != "Completed":
        key = f"task.completed:{seen.uid}:{seen.generation}"
        events.append(seen.event("task.completed", key=key, data=data))
    return events


def skipped_event(
    subject: str, *, uid: str, spec: Mapping[str, Any], series: str | None, occurrence: int | None
) -> Event:
    """``task.skipped``: the occurrence ``subject`` of ``series`` was skipped before it was completed.

    Built from the spec as the object last had it (it is being deleted, and may not validate);
    once per Task (its uid), however often the deletion is handled.
    """
    owner = str(spec.get("owner") or "")
    data = {
        "title": spec.get("title"),
        "owner": owner,
        "recurringTask": series,
        "occurrence": occurrence,
        "dueAt": spec.get("dueAt"),
    }
    return Event(
        type="task.skipped",
        subject=subject,
        partition_key=owner,
        key=f"task.skipped:{uid}",
        data={name: value for name, value in data.items() if value is not None},
    )


def skip_refusal(
    task: Mapping[str, Any], *, series: Mapping[str, Any] | None, shown: Callable[[str], str] = str
) -> str | None:
    """Why ``task`` cannot be skipped now, or None (docs/RECURRENCE.md, "Skipping an occurrence").

    Only the current, not completed occurrence of a live series can be: ``series`` is the
    RecurringTask controlling the task (None when there is none, or it is being deleted).
    ``shown`` names objects as the user sees them (the REST API drops its name prefix).
    """
    name = shown(task["metadata"]["name"])
    if controller_of(task, kind="RecurringTask") is None:
        return f"task {name!r} is not an occurrence of a recurring task: delete it instead"
    if (task.get("spec") or {}).get("completed"):
        return f"task {name!r} is completed: only an open occurrence can be skipped"
    if series is None:
        return f"the recurring task of {name!r} is being deleted"
    current = (series.get("status") or {}).get("currentTask")
    if current != task["metadata"]["name"]:
        that = f" (that is {shown(current)!r})" if current else ""
        return (
            f"task {name!r} is not the current occurrence of its recurring task{that}:"
            " only the current occurrence can be skipped"
        )
    return None
