"""The figures the metrics endpoint reads from the durable record, as plain values.

Defined here, not beside the query that reads them (``store/stats.py``), so
that telemetry depends on nothing of ours and the store may depend on
telemetry (its database spans): the layers stay a line, not a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Histogram:
    """Cumulative counts per upper bound, plus the total count and sum (Prometheus' shape)."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


@dataclass(frozen=True, kw_only=True)
class RecordSnapshot:
    tasks_open: int
    tasks_overdue: int
    tasks_completed: int
    occurrences_completed: int
    occurrences_skipped: int
    occurrences_spawned: int
    recurring_tasks_created: int
    recurring_tasks: dict[str, int]  # live ones per phase
    next_due: Histogram  # active schedules, seconds until their next occurrence
    reminders_scheduled: int
    reminders_pending: int
    reminders_sent_on_time: int
    reminders_sent_late: int
    reminders_failed: int
    reminders_missed: int
    reminders_cancelled: int
    delivery_lag: Histogram
    outbox_pending: int
    outbox_oldest_pending_age_seconds: float
    dead_letters_events: int
    dead_letters_reminders: int
