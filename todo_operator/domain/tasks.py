"""What a Task's status should say, given its spec and the current instant."""

from __future__ import annotations

from datetime import datetime

from todo_operator.domain.resources import TaskPhase, TaskSpec


def task_phase(spec: TaskSpec, *, now: datetime) -> TaskPhase:
    """Completed wins; otherwise Overdue once ``dueAt`` has passed; otherwise Open."""
    if spec.completed:
        return "Completed"
    if spec.due_at is not None and spec.due_at <= now:
        return "Overdue"
    return "Open"
