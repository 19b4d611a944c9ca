"""F13 and F14: deleting what has work in flight.

F13, a Task deleted while its reminder is in flight. With inline delivery
the e-mail may be on the wire at that moment: the SMTP sink holds the DATA
unanswered, so the send holds its row lock (``store/reminder_rows.py``) while the
Task's finalizer runs. The cancel must wait for that send and then agree with
it: the reminder ends Sent (the server took the e-mail) or Cancelled (it
refused, and no retry follows) — exactly one of them, one e-mail or none.
With CronJob delivery the finalizer deletes the reminder's CronJob; a
failure in the middle of that cleanup (an API error after the row was
already cancelled) makes Kopf run the handler again, which must finish the
job without doing anything twice.

F14, a RecurringTask deleted: its occurrences, their Reminders and those
Reminders' CronJobs go with it by owner references (the emulator collects
garbage like the real one), and PostgreSQL keeps every row, marked deleted,
with one ``*.deleted`` event each.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import kmock
import pytest

from tests.faults.lifecycle.record import assert_whole_record
from tests.faults.lifecycle.stack import (
    Stack,
    at,
    fail_requests,
    lock_waiters,
    metric,
    recurring_task,
    reminder_name,
    task,
    wait_gone,
)
from tests.kubeclient import condition

REFUSAL = "451 4.3.0 Try again later"
CANCEL = "UPDATE reminders SET phase"  # store.set_phase: the cancel of a pending reminder


@pytest.mark.parametrize(
    ("reply", "outcome"), [(None, "Sent"), (REFUSAL, "Cancelled")], ids=["server-accepts", "server-defers"]
)
def test_a_task_deleted_while_its_reminder_is_on_the_wire(
    inline_stack: Stack, reply: str | None, outcome: str
) -> None:
    stack = inline_stack
    ns = stack.new_namespace(f"in-flight-{outcome}")
    t0 = stack.clock.now()
    fire = t0 + timedelta(minutes=10)
    name = reminder_name("call-bob", fire)
    stack.kube.create("tasks", ns, task("call-bob", due_at=t0 + timedelta(hours=1), reminders=[at(fire)]))
    uid = stack.wait_status("reminders", ns, name, lambda s: s.get("phase") == "Pending", "Pending")[
        "metadata"
    ]["uid"]
    before = stack.scrape()
    offered = stack.smtp.attempts

    stack.smtp.hold_next()
    stack.clock.set(fire)
    assert stack.smtp.reached.wait(30), "the send never reached the SMTP server"
    stack.kube.delete("tasks", ns, "call-bob")
    # The fault really is "while in flight": the finalizer's cancel is queued behind the send's row lock.
    stack.wait("the cancel waiting for the send in flight", lambda: lock_waiters(stack, CANCEL) == 1)
    stack.smtp.release(reply=reply)

    wait_gone(stack, "tasks", ns)
    wait_gone(stack, "reminders", ns)
    record = assert_whole_record(stack, ns, reminders_sent=1 if outcome == "Sent" else 0)
    after = stack.scrape()

    [row] = record.reminders
    assert (row["uid"], row["phase"], row["attempts"]) == (uid, outcome, 1)
    assert stack.smtp.attempts - offered == 1  # a deferred send is not retried once cancelled
    assert len(stack.smtp.for_reminder(uid)) == (1 if outcome == "Sent" else 0)
    subject = f"{ns}/{name}"
    assert [
        e["event_type"]
        for e in record.outbox
        if e["subject"] == subject and e["event_type"] != "reminder.scheduled"
    ] == ["reminder.sent" if outcome == "Sent" else "reminder.cancelled"]
    assert len(record.events("task.deleted", subject=f"{ns}/call-bob")) == 1
    assert [row["deleted_at"] is not None for row in record.tasks] == [True]
    counter = (
        ("todo_reminders_sent_total", {"timing": "on_time"})
        if outcome == "Sent"
        else ("todo_reminders_cancelled_total", {})
    )
    assert metric(after, counter[0], **counter[1]) - metric(before, counter[0], **counter[1]) == 1
    # ...and the Kubernetes Event that says how the reminder ended outlives it.
    assert outcome in {event["reason"] for event in stack.kube.events(ns, name)}


def _scheduled(stack: Stack, ns: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.wait_status(
        "reminders", ns, name, lambda s: s.get("phase") == "Scheduled", "Scheduled"
    )
    return found


def test_deleting_a_task_removes_its_cronjob_even_when_the_cleanup_fails_midway(cronjob_stack: Stack) -> None:
    stack = cronjob_stack
    ns = stack.new_namespace("cronjob-cleanup")
    t0 = stack.clock.now()
    fire = t0 + timedelta(hours=1)
    name = reminder_name("renew", fire)
    stack.kube.create("tasks", ns, task("renew", due_at=t0 + timedelta(hours=3), reminders=[at(fire)]))
    cron_job = _scheduled(stack, ns, name)["status"]["cronJob"]
    assert [c["metadata"]["name"] for c in stack.objects("batch/v1/cronjobs", ns)] == [cron_job]
    before = stack.scrape()

    # The finalizer's first try dies deleting the CronJob (after it cancelled the row): Kopf runs it again.
    faults = fail_requests(
        stack,
        method=kmock.method.DELETE,
        plural="cronjobs",
        group_version=("batch", "v1"),
        namespace=ns,
        times=1,
    )
    stack.kube.delete("tasks", ns, "renew")
    wait_gone(stack, "tasks", ns)
    wait_gone(stack, "reminders", ns)
    wait_gone(stack, "batch/v1/cronjobs", ns)
    record = assert_whole_record(stack, ns, reminders_sent=0)
    after = stack.scrape()

    assert faults.served == 1
    assert [(row["name"], row["phase"]) for row in record.reminders] == [(name, "Cancelled")]
    assert len(record.events("reminder.cancelled")) == 1
    assert len(record.events("task.deleted")) == 1
    # The trace: the failed cleanup counted as a transient error (and retried), one cancellation.
    assert (
        metric(after, "todo_reconcile_errors_total", kind="Task", reason="transient")
        - metric(before, "todo_reconcile_errors_total", kind="Task", reason="transient")
        >= 1
    )
    assert (
        metric(after, "todo_reminders_cancelled_total") - metric(before, "todo_reminders_cancelled_total")
        == 1
    )


def test_a_task_deleted_and_made_again_gets_its_reminder_again(cronjob_stack: Stack) -> None:
    """The same name after a deletion is a new object (a new uid): its reminder must work like the first.

    (The whole-record checks key facts by subject, i.e. by name, so they cannot
    tell the two lives of ``renew`` apart: this test checks its record itself.)
    """
    stack = cronjob_stack
    ns = stack.new_namespace("made-again")
    t0 = stack.clock.now()
    fire = t0 + timedelta(hours=1)
    name = reminder_name("renew", fire)
    manifest = task("renew", due_at=t0 + timedelta(hours=3), reminders=[at(fire)])
    stack.kube.create("tasks", ns, manifest)
    first = _scheduled(stack, ns, name)["metadata"]["uid"]
    stack.kube.delete("tasks", ns, "renew")
    wait_gone(stack, "reminders", ns)

    stack.kube.create("tasks", ns, manifest)
    again = _scheduled(stack, ns, name)
    assert again["metadata"]["uid"] != first
    assert condition(again["status"])["reason"] == "Scheduled"
    [cron_job] = stack.objects("batch/v1/cronjobs", ns)
    assert cron_job["metadata"]["ownerReferences"][0]["uid"] == again["metadata"]["uid"]

    def settled() -> list[dict[str, Any]] | None:
        outbox = stack.rows(
            "SELECT event_id::text AS event_id, event_type, published_at FROM outbox WHERE subject LIKE %s",
            f"{ns}/%",
        )
        return outbox if all(row["published_at"] for row in outbox) else None

    outbox = stack.wait("every event published", settled)
    assert sorted(
        (row["uid"] == first, row["phase"], row["deleted_at"] is not None)
        for row in stack.rows(
            "SELECT uid::text AS uid, phase, deleted_at FROM reminders WHERE namespace = %s", ns
        )
    ) == [(False, "Scheduled", False), (True, "Cancelled", True)]
    assert sorted(
        (row["deleted_at"] is not None)
        for row in stack.rows("SELECT deleted_at FROM tasks WHERE namespace = %s", ns)
    ) == [False, True]
    counts = {
        kind: [row["event_type"] for row in outbox].count(kind)
        for kind in ("task.created", "task.deleted", "reminder.scheduled", "reminder.cancelled")
    }
    assert counts == {"task.created": 2, "task.deleted": 1, "reminder.scheduled": 2, "reminder.cancelled": 1}
    # Each recorded event published once (task-updates records are derived copies: not counted).
    published = [
        received.event["id"]
        for received in stack.dapr.events()
        if received.topic != "task-updates" and str(received.event["subject"]).startswith(f"{ns}/")
    ]
    assert sorted(published) == sorted(row["event_id"] for row in outbox)


def test_deleting_a_recurring_task_takes_its_occurrences_reminders_and_cronjobs(cronjob_stack: Stack) -> None:
    stack = cronjob_stack
    ns = stack.new_namespace("recurring-delete")
    day = (stack.clock.now() + timedelta(days=1)).date()
    schedule = {"every": "daily", "start": f"{day.isoformat()}T09:00:00", "timeZone": "UTC"}
    stack.kube.create(
        "recurringtasks", ns, recurring_task("plants", schedule=schedule, reminders=[{"before": "1h"}])
    )
    first = stack.wait_status("recurringtasks", ns, "plants", lambda s: s.get("occurrences") == 1, "1")
    stack.kube.patch("tasks", ns, first["status"]["currentTask"], {"spec": {"completed": True}})
    second = stack.wait_status("recurringtasks", ns, "plants", lambda s: s.get("occurrences") == 2, "2")
    current = second["status"]["currentTask"]
    pending = _scheduled(stack, ns, f"{current}-before-1h")
    # Before: two occurrences, two Reminders (the done one's cancelled), one CronJob (the open one's).
    assert len(stack.objects("tasks", ns)) == 2
    assert len(stack.objects("reminders", ns)) == 2
    assert [c["metadata"]["name"] for c in stack.objects("batch/v1/cronjobs", ns)] == [
        pending["status"]["cronJob"]
    ]
    before = stack.scrape()

    stack.kube.delete("recurringtasks", ns, "plants")
    for resource in ("recurringtasks", "tasks", "reminders", "batch/v1/cronjobs"):
        wait_gone(stack, resource, ns)
    record = assert_whole_record(stack, ns, occurrences={}, reminders_sent=0)
    after = stack.scrape()

    assert [row["deleted_at"] is not None for row in record.recurring_tasks] == [True]
    assert [(row["occurrence"], row["deleted_at"] is not None) for row in record.tasks] == [
        (1, True),
        (2, True),
    ]
    assert [row["phase"] for row in record.reminders] == ["Cancelled", "Cancelled"]
    assert len(record.events("recurringtask.deleted")) == 1
    assert len(record.events("task.deleted")) == 2
    assert len(record.events("reminder.cancelled")) == 2
    # The trace in metrics: one active recurring task fewer, the open reminder cancelled.
    assert (
        metric(after, "todo_recurring_tasks", phase="Active")
        == metric(before, "todo_recurring_tasks", phase="Active") - 1
    )
    assert (
        metric(after, "todo_reminders_cancelled_total") - metric(before, "todo_reminders_cancelled_total")
        == 1
    )
    assert metric(after, "todo_reminders_pending") == metric(before, "todo_reminders_pending") - 1
