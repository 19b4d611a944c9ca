"""How a RecurringTask becomes Task occurrences: names, due dates, specs.

Occurrence names are deterministic (``<recurringtask>-<YYYYMMDDTHHMM>`` of the
due instant in UTC), so an operator that crashed after creating one finds it
again on the retry instead of creating a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from todo_operator.domain import recurrence, timing
from todo_operator.domain.resources import RecurringTaskSpec, Schedule, TaskSpec, parse_local_datetime


def occurrence_name(recurring_task: str, due_at: datetime) -> str:
    """``weekly-review-20261204t1500``; long names are shortened with a stable hash."""
    return timing.bounded_name(recurring_task, f"{due_at.astimezone(UTC):%Y%m%dt%H%M}")


def schedule_spec(schedule: Schedule) -> recurrence.ScheduleSpec:
    """The engine's view of a resource's ``spec.schedule``."""
    return recurrence.ScheduleSpec(
        rrule=schedule.rrule,
        every=schedule.every,
        interval=schedule.interval or 1,
        start=parse_local_datetime(schedule.start),
        time_zone=schedule.time_zone,
        until=parse_local_datetime(schedule.until) if schedule.until else None,
        count=schedule.count,
        exdates=tuple(parse_local_datetime(exdate) for exdate in schedule.exdates),
        rdates=tuple(parse_local_datetime(rdate) for rdate in schedule.rdates),
    )


def first_due(schedule: recurrence.Recurrence, *, created_at: datetime) -> datetime | None:
    """The first occurrence at or after the later of the schedule's start and ``created_at``.

    A schedule that began last year does not open with a year-old overdue task.
    """
    return schedule.first_at_or_after(created_at)


def occurrence_spec(spec: RecurringTaskSpec, *, due_at: datetime) -> TaskSpec:
    """The Task spec of one occurrence: the template, due at ``due_at``."""
    template = spec.task_template
    return TaskSpec(
        title=template.title,
        description=template.description,
        owner=template.owner,
        priority=template.priority,
        tags=template.tags,
        due_at=due_at,
        reminders=template.reminders,
    )
