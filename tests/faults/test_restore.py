"""Disaster recovery: PostgreSQL restored from a dump, the objects re-applied from Git.

The recovery docs/OPERATIONS.md describes for a lost cluster: a stack runs (the
emulator, PostgreSQL, the operator with inline reminders, the SMTP sink, the
Dapr double); a RecurringTask with a reminder and a Task with a reminder are
applied; the operator makes two occurrences, sends the first occurrence's
reminder and records the others as pending. The database is dumped with the
real ``pg_dump`` and restored with ``pg_restore`` into a fresh database. A
fresh operator starts on it, against a fresh emulator, and the two objects
are applied again as a GitOps tool would: the same names and specs, and, as
on any new cluster, new uids.

Each re-applied object takes up the record of its name (``operator/claims.py``):
the series goes on at its second occurrence, the completed first occurrence
is made again completed, the sent reminder stays sent, every row moves to
its object's new uid, and nothing is recorded, published or mailed a second
time. The reminder still pending is sent at its minute, once.
"""

from __future__ import annotations

import collections
import copy
import pathlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.faults.apiserver.conftest import NAMESPACE, OWNER, Stack, ready, running_stack, tomorrow_at_nine
from tests.faults.record import Record, assert_nothing_lost_nothing_twice
from todo_devstack import postgres
from todo_operator.domain import resources
from todo_operator.store import schema

Json = dict[str, Any]
SERIES = "chores"
TASK = "passport"
REMINDER = [{"before": "1h"}]
SETTLE = 20.0  # seconds a restored stack is given to converge
QUIET = 0.5  # seconds a converged stack is watched for a late duplicate


def occurrence_name(due: datetime) -> str:
    return f"{SERIES}-{due:%Y%m%dt%H%M}"


def passport_due() -> datetime:
    return tomorrow_at_nine() + timedelta(days=2)


def git_manifests() -> list[tuple[str, Json]]:
    """What a team keeps in Git: the RecurringTask and the Task, as applied (no uid, no status)."""
    task: Json = {
        "apiVersion": resources.API_VERSION,
        "kind": "Task",
        "metadata": {"name": TASK},
        "spec": {
            "title": "Renew passport",
            "owner": OWNER,
            "dueAt": passport_due().isoformat(),
            "reminders": REMINDER,
        },
    }
    series: Json = {
        "apiVersion": resources.API_VERSION,
        "kind": "RecurringTask",
        "metadata": {"name": SERIES},
        "spec": {
            "schedule": {"every": "daily", "start": tomorrow_at_nine().strftime("%Y-%m-%dT%H:%M:%S")},
            "taskTemplate": {"title": "Chore chores", "owner": OWNER, "reminders": REMINDER},
        },
    }
    return [("recurringtasks", series), ("tasks", task)]


def apply(stack: Stack) -> None:
    for plural, manifest in git_manifests():
        stack.kube.create(plural, NAMESPACE, copy.deepcopy(manifest))


def run(bin_dir: pathlib.Path, *argv: str) -> None:
    """A PostgreSQL client program of the server's own version (pg_dump, pg_restore)."""
    result = subprocess.run([str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{argv[0]} failed ({result.returncode}): {result.stderr}"


@dataclass
class Restored:
    before: Record  # the first stack's record, whole, as it was dumped
    mails_before: list[str]  # Message-IDs the first stack's SMTP sink received
    events_before: set[str]  # CloudEvent ids the first stack's Dapr double received
    stack: Stack  # the fresh stack on the restored database, the objects applied again
    latest: datetime  # the first stack's clock when it was dumped


@pytest.fixture(scope="module")
def restored(
    postgres_server: postgres.ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Restored]:
    source = postgres_server.create_database("restore_source", template="todo_template")
    target = postgres_server.create_database("restore_target")  # empty: no schema at all
    dump = tmp_path_factory.mktemp("backup") / "todo.dump"
    with running_stack(source) as first:
        apply(first)
        first.wait_reminders_pending(SERIES)
        first.clock.set(tomorrow_at_nine() - timedelta(minutes=59))  # occurrence 1's reminder is due
        first.wait_for("the first reminder sent", lambda: first.smtp.messages)
        first.complete(first.wait_occurrence(SERIES, 1)["status"]["currentTask"])
        first.wait_occurrence(SERIES, 2)
        before = assert_nothing_lost_nothing_twice(
            first.sources, NAMESPACE, occurrences={SERIES: 2}, reminders_sent=1
        )
        # An online backup, as in production: pg_dump reads one consistent snapshot.
        run(postgres_server.bin_dir, "pg_dump", "--format=custom", f"--file={dump}", f"--dbname={source}")
        mails_before = [str(message["Message-ID"]) for message in first.smtp.messages]
        events_before = {received.event["id"] for received in first.dapr.events()}
        latest = first.clock.now()
    run(
        postgres_server.bin_dir,
        "pg_restore",
        "--exit-on-error",
        "--no-owner",
        f"--dbname={target}",
        str(dump),
    )
    assert schema.applied(target) == schema.applied(source)  # the migrations came with the dump
    with running_stack(target) as second:
        second.clock.set(latest)  # time goes on from the backup, never back
        apply(second)
        yield Restored(
            before=before, mails_before=mails_before, events_before=events_before, stack=second, latest=latest
        )


def taken_up(stack: Stack) -> set[str]:
    """The objects whose ``kubectl describe`` tells that they took up a restored record."""
    return {
        event["involvedObject"]["name"]
        for event in stack.api.objects("v1/events", NAMESPACE)
        if event.get("reason") == "RecordTakenUp"
    }


def test_a_restore_with_reapplied_objects_converges(restored: Restored) -> None:
    stack, before = restored.stack, restored.before
    first_occurrence = occurrence_name(tomorrow_at_nine())
    second_occurrence = occurrence_name(tomorrow_at_nine() + timedelta(days=1))

    def series_goes_on() -> Json | None:
        status = (stack.get("recurringtasks", SERIES) or {}).get("status") or {}
        whole = (
            ready(status)
            and status.get("occurrences") == 2
            and status.get("currentTask") == second_occurrence
        )
        return status if whole else None

    def reminders_settled() -> dict[str, str] | None:
        phases = {
            name: (reminder.get("status") or {}).get("phase")
            for name, reminder in Record.snapshot(stack.sources, NAMESPACE).reminders.items()
        }
        return phases if len(phases) == 3 and all(phases.values()) else None

    stack.wait_for("the series going on at occurrence 2, Ready", series_goes_on, timeout=SETTLE)
    stack.wait_for("the Task Ready", lambda: ready(((stack.get("tasks", TASK) or {}).get("status")) or {}))
    # Occurrence 1 is made again as it was recorded: completed, not as a new open task.
    done = stack.wait_for(
        "occurrence 1 made again, Completed",
        lambda: (stack.get("tasks", first_occurrence) or {}).get("status", {}).get("phase") == "Completed",
    )
    assert done
    assert (stack.get("tasks", first_occurrence) or {})["spec"]["completed"] is True
    phases = stack.wait_for("the three reminders settled", reminders_settled, timeout=SETTLE)
    assert phases == {
        f"{first_occurrence}-before-1h": "Sent",  # sent before the backup: not again
        f"{second_occurrence}-before-1h": "Pending",
        f"{TASK}-before-1h": "Pending",
    }
    stack.wait_for("every object told it took up its record", lambda: len(taken_up(stack)) == 7)
    assert taken_up(stack) == {SERIES, TASK, first_occurrence, second_occurrence, *phases}

    time.sleep(QUIET)  # a late duplicate would arrive now
    now = Record.snapshot(stack.sources, NAMESPACE)
    # Every row is the object's now, and no row was added: the history carried over.
    assert now.recurring_task_rows == now.recurring_tasks
    assert {row["name"]: row["uid"] for row in now.task_rows if not row["deleted"]} == {
        name: task["metadata"]["uid"] for name, task in now.tasks.items()
    }
    assert {row["name"]: row["uid"] for row in now.reminder_rows if not row["deleted"]} == {
        name: reminder["metadata"]["uid"] for name, reminder in now.reminders.items()
    }
    assert shape(now.task_rows) == shape(before.task_rows)
    assert shape(now.reminder_rows) == shape(before.reminder_rows)
    series_uid = now.recurring_tasks[SERIES]
    assert {row["recurring_task_uid"] for row in now.task_rows if row["occurrence"]} == {series_uid}
    # Nothing was told, published or mailed a second time.
    assert now.outbox == before.outbox
    assert stack.dapr.events() == []
    assert stack.smtp.messages == []


def test_the_series_reminders_go_on_from_the_restored_record(restored: Restored) -> None:
    stack, before = restored.stack, restored.before
    second_occurrence = occurrence_name(tomorrow_at_nine() + timedelta(days=1))
    reminder = f"{second_occurrence}-before-1h"
    stack.wait_for("occurrence 2's reminder taken up", lambda: reminder in taken_up(stack), timeout=SETTLE)
    stack.clock.set(tomorrow_at_nine() + timedelta(days=1, minutes=-59))
    stack.wait_for("occurrence 2's reminder sent", lambda: stack.smtp.messages)
    stack.wait_for("its event published", lambda: stack.dapr.events())
    time.sleep(QUIET)
    after = Record.snapshot(stack.sources, NAMESPACE)
    uid = after.reminders[reminder]["metadata"]["uid"]
    assert [str(message["Message-ID"]) for message in stack.smtp.messages] == [f"<{uid}@todo-operator>"]
    assert not {str(message["Message-ID"]) for message in stack.smtp.messages} & set(restored.mails_before)
    sent = [entry for entry in after.outbox if entry not in before.outbox]
    assert [(entry.event_type, entry.subject) for entry in sent] == [
        ("reminder.sent", f"{NAMESPACE}/{reminder}")
    ]
    published = collections.Counter(received.event["id"] for received in stack.dapr.events())
    assert published == {sent[0].event_id: 1}
    assert sent[0].event_id not in restored.events_before  # a new fact, not a second copy of one
    assert stack.wait_for(
        "its status Sent",
        lambda: (stack.get("reminders", reminder) or {}).get("status", {}).get("phase") == "Sent",
    )


def shape(rows: list[Json]) -> set[tuple[Any, ...]]:
    """Rows without their uids: what was recorded, whichever object it is recorded for."""
    return {
        tuple(value for key, value in sorted(row.items()) if key not in ("uid", "recurring_task_uid"))
        for row in rows
    }
