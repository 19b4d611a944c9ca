"""The Kubernetes objects the operator creates, and how it finds them again.

Occurrences carry the uid of their RecurringTask and their index as labels
(label values are limited to 63 characters, names are not), plus an owner
reference so that deleting the RecurringTask deletes them (F14).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from todo_operator.domain import occurrences, resources
from todo_operator.kube import owners

LABEL_RECURRING_TASK_UID = "todo.dev/recurring-task-uid"
LABEL_OCCURRENCE = "todo.dev/occurrence"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "todo-operator"
ANNOTATION_TIME_ZONE = "todo.dev/time-zone"


def occurrence_labels(*, recurring_task_uid: str, index: int | None = None) -> dict[str, str]:
    labels = {LABEL_RECURRING_TASK_UID: recurring_task_uid}
    if index is not None:
        labels[LABEL_OCCURRENCE] = str(index)
    return labels


def occurrence_task(
    *, recurring_task: dict[str, Any], spec: resources.RecurringTaskSpec, due_at: datetime, index: int
) -> dict[str, Any]:
    """The manifest of occurrence number ``index`` (1-based) of a RecurringTask."""
    return recorded_occurrence(
        recurring_task=recurring_task,
        spec=spec,
        name=occurrences.occurrence_name(recurring_task["metadata"]["name"], due_at),
        index=index,
        task=occurrences.occurrence_spec(spec, due_at=due_at).to_wire(),
    )


def recorded_occurrence(
    *,
    recurring_task: dict[str, Any],
    spec: resources.RecurringTaskSpec,
    name: str,
    index: int,
    task: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of an occurrence named ``name`` with Task spec ``task``: as
    :func:`occurrence_task` computes it, or made again as PostgreSQL recorded it."""
    meta = recurring_task["metadata"]
    return {
        "apiVersion": resources.API_VERSION,
        "kind": "Task",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {
                **occurrence_labels(recurring_task_uid=meta["uid"], index=index),
                LABEL_MANAGED_BY: MANAGER,
            },
            # Reminder e-mails show the due time in the schedule's zone.
            "annotations": {ANNOTATION_TIME_ZONE: spec.schedule.time_zone},
            "ownerReferences": [owners.controller_reference(recurring_task, kind="RecurringTask")],
        },
        "spec": task,
    }


def occurrence_index(body: dict[str, Any]) -> int | None:
    value = (body.get("metadata", {}).get("labels") or {}).get(LABEL_OCCURRENCE)
    return int(value) if value and value.isdigit() else None
