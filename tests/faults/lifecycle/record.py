"""The whole record of one namespace after a lifecycle fault: the shared check, plus what lifecycles add.

Every test here ends with :func:`assert_whole_record`. It runs the suite's
shared check (``tests/faults/record.py``: objects <-> rows, outbox <->
CloudEvents, e-mails <-> sent reminders, each once) and then the facts that
deletion, clocks and schedules add, which the shared check does not look at:

* **reminders**: exactly one terminal event per finished reminder, and the
  one that matches its phase (never both ``reminder.sent`` and
  ``reminder.cancelled``); a Scheduled reminder whose object lives has its
  one CronJob, any other reminder none (the finalizer's work, F13);
* **deletions**: each row marked deleted has no object left and exactly one
  ``task.deleted`` / ``recurringtask.deleted`` event (F13, F14);
* **occurrences**: per RecurringTask, due times strictly increase with the
  occurrence index (a backward clock or an old rule brought nothing back:
  F7, F17) and the row counts as many occurrences as there are tasks.

Both parts wait (with a deadline) for the record to settle and fail listing
every problem still there.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.faults.record import Record, Sources, assert_nothing_lost_nothing_twice

if TYPE_CHECKING:
    from tests.faults.lifecycle.stack import Stack

Json = dict[str, Any]

TERMINAL_EVENT = {"Sent": "reminder.sent", "Failed": "reminder.failed", "Cancelled": "reminder.cancelled"}


@dataclass(frozen=True, kw_only=True)
class WholeRecord:
    """The shared :class:`Record`, plus the rows, events and CronJobs the lifecycle checks read."""

    shared: Record
    namespace: str
    tasks: list[Json]
    recurring_tasks: list[Json]
    reminders: list[Json]
    outbox: list[Json]
    dead_letters: list[Json]
    objects: dict[str, list[Json]]

    def events(self, event_type: str, *, subject: str | None = None) -> list[Json]:
        return [
            row
            for row in self.outbox
            if row["event_type"] == event_type and (subject is None or row["subject"] == subject)
        ]

    def occurrence_dues(self, recurring_task_uid: str) -> list[tuple[int, Any]]:
        """(index, due_at) of the occurrences recorded for one RecurringTask, deleted ones included."""
        return [
            (row["occurrence"], row["due_at"])
            for row in self.tasks
            if row["recurring_task_uid"] == recurring_task_uid
        ]


def collect(stack: Stack, namespace: str, shared: Record) -> WholeRecord:
    prefix = f"{namespace}/%"
    return WholeRecord(
        shared=shared,
        namespace=namespace,
        tasks=stack.rows(
            "SELECT uid::text AS uid, name, phase, due_at, completed_at,"
            " recurring_task_uid::text AS recurring_task_uid, occurrence, deleted_at"
            " FROM tasks WHERE namespace = %s ORDER BY recurring_task_uid, occurrence, name",
            namespace,
        ),
        recurring_tasks=stack.rows(
            "SELECT uid::text AS uid, name, rule, time_zone, phase, current_task, next_due_at, occurrences,"
            " generation, deleted_at FROM recurring_tasks WHERE namespace = %s ORDER BY name",
            namespace,
        ),
        reminders=stack.rows(
            "SELECT uid::text AS uid, name, phase, attempts, late, fire_at, sent_at, last_error, deleted_at"
            " FROM reminders WHERE namespace = %s ORDER BY name",
            namespace,
        ),
        outbox=stack.rows(
            "SELECT id, event_id::text AS event_id, event_type, subject, payload"
            " FROM outbox WHERE subject LIKE %s ORDER BY id",
            prefix,
        ),
        dead_letters=stack.rows(
            "SELECT reminder_uid::text AS reminder_uid, attempts, last_error"
            " FROM dead_letters WHERE subject LIKE %s ORDER BY id",
            prefix,
        ),
        objects={
            plural: stack.objects(plural, namespace)
            for plural in ("tasks", "recurringtasks", "reminders", "batch/v1/cronjobs")
        },
    )


def _reminder_problems(record: WholeRecord) -> list[str]:
    problems = []
    live = {obj["metadata"]["uid"] for obj in record.objects["reminders"]}
    for row in record.reminders:
        subject = f"{record.namespace}/{row['name']}"
        found = {kind: len(record.events(kind, subject=subject)) for kind in TERMINAL_EVENT.values()}
        expected = TERMINAL_EVENT.get(row["phase"])
        if any(count != (1 if kind == expected else 0) for kind, count in found.items()):
            problems.append(f"reminder {row['name']} is {row['phase']} with terminal events {found}")
        triggers = sum(
            1
            for cronjob in record.objects["batch/v1/cronjobs"]
            if (cronjob["metadata"].get("labels") or {}).get("todo.dev/reminder") == row["name"][:63]
        )
        wanted = 1 if row["phase"] == "Scheduled" and row["uid"] in live else 0
        if triggers != wanted:
            problems.append(f"reminder {row['name']} is {row['phase']} with {triggers} CronJob(s)")
    return problems


def _deletion_problems(record: WholeRecord) -> list[str]:
    problems = []
    for plural, rows, kind in (
        ("tasks", record.tasks, "task.deleted"),
        ("recurringtasks", record.recurring_tasks, "recurringtask.deleted"),
    ):
        objects = {obj["metadata"]["uid"] for obj in record.objects[plural]}
        for row in rows:
            if row["deleted_at"] is None:
                continue
            if row["uid"] in objects:
                problems.append(f"{plural} {row['name']} is marked deleted but its object remains")
            count = len(record.events(kind, subject=f"{record.namespace}/{row['name']}"))
            if count != 1:
                problems.append(f"{plural} {row['name']} is marked deleted with {count} {kind} event(s)")
    return problems


def _occurrence_problems(record: WholeRecord) -> list[str]:
    problems = []
    by_owner: dict[str, list[Json]] = defaultdict(list)
    for row in record.tasks:
        if row["recurring_task_uid"] is not None:
            by_owner[row["recurring_task_uid"]].append(row)
    for recurring in record.recurring_tasks:
        owned = by_owner.get(recurring["uid"], [])
        live = {row["occurrence"] for row in owned if row["deleted_at"] is None}
        # An occurrence of an edited rule that the operator removed again repeats a live index (F17).
        owned = [row for row in owned if not (row["deleted_at"] is not None and row["occurrence"] in live)]
        rows = sorted(owned, key=lambda row: row["occurrence"])
        dues = [row["due_at"] for row in rows]
        if any(later <= earlier for earlier, later in itertools.pairwise(dues)):
            problems.append(
                f"{recurring['name']}: due times do not increase: {[d.isoformat() for d in dues]}"
            )
        if recurring["occurrences"] != len(rows):
            problems.append(
                f"{recurring['name']}: row counts {recurring['occurrences']}, tasks hold {len(rows)}"
            )
    return problems


def problems_of(record: WholeRecord) -> list[str]:
    return [*_reminder_problems(record), *_deletion_problems(record), *_occurrence_problems(record)]


def assert_whole_record(
    stack: Stack,
    namespace: str,
    *,
    occurrences: Mapping[str, int] | None = None,
    reminders_sent: int | None = None,
    timeout: float = 30.0,
    withdrawn: Mapping[str, int] | None = None,
) -> WholeRecord:
    """The shared check, then the lifecycle checks; wait for both to hold and return the record.

    ``occurrences`` maps each (live) RecurringTask of the namespace to how many occurrences it made.
    """
    sources = Sources(api=stack.api, database_url=stack.database_url, dapr=stack.dapr, smtp=stack.smtp)
    shared = assert_nothing_lost_nothing_twice(
        sources,
        namespace,
        occurrences=occurrences or {},
        reminders_sent=reminders_sent,
        timeout=timeout,
        withdrawn=withdrawn,
    )
    deadline = time.monotonic() + timeout
    while True:
        record = collect(stack, namespace, shared)
        problems = problems_of(record)
        if not problems:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"the record of {namespace} is not whole:\n  " + "\n  ".join(problems))
        time.sleep(0.1)
