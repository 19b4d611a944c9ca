"""Figures read from the durable record, for the metrics endpoint.

Counts such as "reminders sent" are taken from PostgreSQL, not from counters
in one process: a reminder sent by a short-lived ``notify`` Job, or by another
replica, is counted all the same, and a restart loses nothing. Rows are
soft-deleted (``deleted_at``), so these counts only grow, as a Prometheus
counter must (an admin's retry of a failed reminder is the one exception).

One statement reads everything, so a scrape costs one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from todo_operator.store.repository import Repository
from todo_operator.telemetry.figures import Histogram, RecordSnapshot

# Reminder delivery lag (sent - fire time): seconds on time, minutes when caught up late.
LAG_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 900, 3600, 6 * 3600, 24 * 3600)
# How far ahead active schedules' next occurrences lie.
NEXT_DUE_BUCKETS: tuple[float, ...] = (3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)

RECURRING_PHASES = ("Active", "Suspended", "Ended")


def _buckets(expression: str, bounds: Sequence[float], prefix: str) -> str:
    return ",\n           ".join(
        f"count(*) FILTER (WHERE {expression} <= {float(bound)!r}) AS {prefix}{index}"
        for index, bound in enumerate(bounds)
    )


_LAG = "extract(epoch FROM sent_at - fire_at)"
_SENT = "phase = 'Sent' AND sent_at IS NOT NULL AND fire_at IS NOT NULL"
_NEXT_DUE = "extract(epoch FROM next_due_at - %(now)s)"
_SCHEDULED = "phase = 'Active' AND deleted_at IS NULL AND next_due_at IS NOT NULL"

# Built from our constants only (no input is interpolated).
_SNAPSHOT = sql.SQL(
    f"""
WITH t AS (
    SELECT count(*) FILTER (WHERE phase = 'Open' AND deleted_at IS NULL) AS tasks_open,
           count(*) FILTER (WHERE phase = 'Overdue' AND deleted_at IS NULL) AS tasks_overdue,
           count(*) FILTER (WHERE completed_at IS NOT NULL AND recurring_task_uid IS NULL) AS tasks_completed,
           count(*) FILTER (WHERE completed_at IS NOT NULL AND recurring_task_uid IS NOT NULL)
               AS occurrences_completed,
           count(*) FILTER (WHERE phase = 'Skipped') AS occurrences_skipped,
           count(*) FILTER (WHERE recurring_task_uid IS NOT NULL) AS occurrences_spawned
      FROM tasks
), r AS (
    SELECT count(*) AS recurring_tasks_created,
           count(*) FILTER (WHERE phase = 'Active' AND deleted_at IS NULL) AS recurring_active,
           count(*) FILTER (WHERE phase = 'Suspended' AND deleted_at IS NULL) AS recurring_suspended,
           count(*) FILTER (WHERE phase = 'Ended' AND deleted_at IS NULL) AS recurring_ended,
           count(*) FILTER (WHERE {_SCHEDULED}) AS next_due_count,
           coalesce(sum({_NEXT_DUE}) FILTER (WHERE {_SCHEDULED}), 0) AS next_due_sum,
           {_buckets(f"CASE WHEN {_SCHEDULED} THEN {_NEXT_DUE} END", NEXT_DUE_BUCKETS, "next_due_le_")}
      FROM recurring_tasks
), m AS (
    SELECT count(*) AS reminders_scheduled,
           count(*) FILTER (WHERE phase IN ('Pending', 'Scheduled') AND deleted_at IS NULL)
               AS reminders_pending,
           count(*) FILTER (WHERE phase = 'Sent' AND NOT late) AS reminders_sent_on_time,
           count(*) FILTER (WHERE phase = 'Sent' AND late) AS reminders_sent_late,
           count(*) FILTER (WHERE phase = 'Failed' AND coalesce(last_error, '') NOT LIKE 'missed:%%')
               AS reminders_failed,
           count(*) FILTER (WHERE phase = 'Failed' AND last_error LIKE 'missed:%%') AS reminders_missed,
           count(*) FILTER (WHERE phase = 'Cancelled') AS reminders_cancelled,
           count(*) FILTER (WHERE {_SENT}) AS lag_count,
           coalesce(sum(greatest({_LAG}, 0)) FILTER (WHERE {_SENT}), 0) AS lag_sum,
           {_buckets(f"CASE WHEN {_SENT} THEN {_LAG} END", LAG_BUCKETS, "lag_le_")}
      FROM reminders
), o AS (
    SELECT count(*) AS outbox_pending,
           coalesce(extract(epoch FROM %(now)s - min(created_at)), 0) AS outbox_oldest_pending_age_seconds
      FROM outbox WHERE published_at IS NULL
), d AS (
    SELECT count(*) FILTER (WHERE reminder_uid IS NULL) AS dead_letters_events,
           count(*) FILTER (WHERE reminder_uid IS NOT NULL) AS dead_letters_reminders
      FROM dead_letters WHERE retried_at IS NULL
)
SELECT * FROM t, r, m, o, d
"""
)


def _histogram(
    row: dict[str, Any], *, prefix: str, bounds: Sequence[float], count: str, total: str
) -> Histogram:
    return Histogram(
        buckets=tuple((bound, int(row[f"{prefix}{index}"])) for index, bound in enumerate(bounds)),
        count=int(row[count]),
        sum=float(row[total]),
    )


class Stats(Repository):
    """The figures of the durable record, in one statement."""

    async def snapshot(self, *, now: datetime) -> RecordSnapshot:
        async with self._connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_SNAPSHOT, {"now": now})
            row = await cursor.fetchone()
        assert row is not None  # aggregates always return one row
        return _snapshot(row)


def _snapshot(row: dict[str, Any]) -> RecordSnapshot:
    return RecordSnapshot(
        tasks_open=row["tasks_open"],
        tasks_overdue=row["tasks_overdue"],
        tasks_completed=row["tasks_completed"],
        occurrences_completed=row["occurrences_completed"],
        occurrences_skipped=row["occurrences_skipped"],
        occurrences_spawned=row["occurrences_spawned"],
        recurring_tasks_created=row["recurring_tasks_created"],
        recurring_tasks={
            "Active": row["recurring_active"],
            "Suspended": row["recurring_suspended"],
            "Ended": row["recurring_ended"],
        },
        next_due=_histogram(
            row, prefix="next_due_le_", bounds=NEXT_DUE_BUCKETS, count="next_due_count", total="next_due_sum"
        ),
        reminders_scheduled=row["reminders_scheduled"],
        reminders_pending=row["reminders_pending"],
        reminders_sent_on_time=row["reminders_sent_on_time"],
        reminders_sent_late=row["reminders_sent_late"],
        reminders_failed=row["reminders_failed"],
        reminders_missed=row["reminders_missed"],
        reminders_cancelled=row["reminders_cancelled"],
        delivery_lag=_histogram(
            row, prefix="lag_le_", bounds=LAG_BUCKETS, count="lag_count", total="lag_sum"
        ),
        outbox_pending=row["outbox_pending"],
        outbox_oldest_pending_age_seconds=max(0.0, float(row["outbox_oldest_pending_age_seconds"])),
        dead_letters_events=row["dead_letters_events"],
        dead_letters_reminders=row["dead_letters_reminders"],
    )
