"""F7: the clock jumps forward or back under the running operator.

Clocks jump: NTP steps a skewed node, a VM resumes from a snapshot, a
leap-second smear is undone. The operator must not fire anything twice when
time goes back (an e-mail already sent, an occurrence already spawned), and
must catch up once, by the documented policy, when it leaps forward
(docs/REMINDERS.md: grace 5 min, look-back 24 h; docs/RECURRENCE.md:
``anchor: schedule`` skips missed slots instead of piling up tasks).

The inline stack's :class:`ManualClock` is the operator's only clock, so
``clock.set`` is exactly a system clock step as the operator sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.faults.lifecycle.record import assert_whole_record
from tests.faults.lifecycle.stack import (
    Stack,
    at,
    metric,
    recurring_task,
    reminder_name,
    scheduler_pass,
    task,
)
from tests.kubeclient import condition


def _next_nine(after: datetime) -> datetime:
    """09:00 UTC on the day after ``after``: a daily slot safely after the emulator's real creation time."""
    day = (after + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


def _daily_at_nine(first: datetime) -> dict[str, str]:
    return {"every": "daily", "start": first.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _occurrences(stack: Stack, namespace: str, name: str, count: int) -> dict[str, object]:
    found: dict[str, object] = stack.wait_status(
        "recurringtasks", namespace, name, lambda s: s.get("occurrences") == count, f"{count} occurrences"
    )["status"]
    return found


def _complete(stack: Stack, namespace: str, name: str) -> None:
    stack.kube.patch("tasks", namespace, name, {"spec": {"completed": True}})


def test_a_backward_jump_sends_nothing_again_and_spawns_nothing_again(inline_stack: Stack) -> None:
    stack = inline_stack
    ns = stack.new_namespace("clock-back")
    with stack.restore_clock() as t0:
        before = stack.scrape()
        # A reminder that is sent, and a task that turns Overdue, before the jump.
        fire = t0 + timedelta(minutes=10)
        stack.kube.create(
            "tasks", ns, task("report", due_at=t0 + timedelta(minutes=30), reminders=[at(fire)])
        )
        reminder = reminder_name("report", fire)
        stack.wait_status("reminders", ns, reminder, lambda s: s.get("phase") == "Pending", "Pending")
        stack.clock.set(t0 + timedelta(minutes=11))
        sent = stack.wait_status("reminders", ns, reminder, lambda s: s.get("phase") == "Sent", "Sent")
        uid = sent["metadata"]["uid"]
        assert len(stack.smtp.for_reminder(uid)) == 1
        stack.clock.set(t0 + timedelta(minutes=31))
        stack.wait_status("tasks", ns, "report", lambda s: s.get("phase") == "Overdue", "Overdue")

        # A recurring task whose first occurrence is done and whose second is spawned.
        d1 = _next_nine(t0)
        stack.kube.create("recurringtasks", ns, recurring_task("standup", schedule=_daily_at_nine(d1)))
        first = _occurrences(stack, ns, "standup", 1)["currentTask"]
        assert isinstance(first, str)
        stack.clock.set(d1 + timedelta(hours=1))  # occurrence 1 is late when it gets done
        # (Completed only once Overdue: the scheduler's overdue sweep racing a completion
        # reconciles the RecurringTask twice at once and posts OccurrenceCreated twice.)
        stack.wait_status("tasks", ns, first, lambda s: s.get("phase") == "Overdue", "Overdue")
        _complete(stack, ns, first)
        second = _occurrences(stack, ns, "standup", 2)["currentTask"]
        assert isinstance(second, str)
        latest = stack.clock.now()

        # The jump: back to before everything above happened.
        stack.clock.set(t0)
        scheduler_pass(stack, t0)
        # Edits while the clock is behind re-run every reconcile with the earlier "now".
        for name in ("report", first):
            edited = stack.kube.patch("tasks", ns, name, {"spec": {"tags": ["after-the-jump"]}})
            generation = edited["metadata"]["generation"]
            stack.wait_status(
                "tasks",
                ns,
                name,
                lambda s, g=generation: s.get("observedGeneration") == g,
                f"generation {generation}",
            )
        # Completing occurrence 2 "before" occurrence 1 was completed still advances by one slot.
        _complete(stack, ns, second)
        third = _occurrences(stack, ns, "standup", 3)["currentTask"]
        # A reminder made after the jump, for a moment between the jump and where time was:
        # once it is sent, the dispatcher has looked at every due reminder at that time.
        # An hour before ``latest``, not a fixed offset from t0: ``latest`` is a day or more
        # after t0 depending on the time of day the test runs, and a barrier more than 24 h
        # before the clock would be past the look-back (Missed, never Sent).
        barrier = latest - timedelta(hours=1)
        assert t0 < barrier
        stack.kube.create(
            "tasks", ns, task("barrier", due_at=t0 + timedelta(days=1), reminders=[at(barrier)])
        )
        stack.wait_status(
            "reminders",
            ns,
            reminder_name("barrier", barrier),
            lambda s: s.get("phase") == "Pending",
            "Pending",
        )

        # And forward again, past every moment already handled.
        stack.clock.set(latest + timedelta(minutes=1))
        scheduler_pass(stack, latest + timedelta(minutes=1))
        stack.wait_status(
            "reminders", ns, reminder_name("barrier", barrier), lambda s: s.get("phase") == "Sent", "Sent"
        )

        record = assert_whole_record(stack, ns, occurrences={"standup": 3}, reminders_sent=2)
        after = stack.scrape()

    # Sent once, before the jump, never again.
    assert len(stack.smtp.for_reminder(uid)) == 1
    assert [row["attempts"] for row in record.reminders if row["uid"] == uid] == [1]
    assert condition(stack.kube.get("reminders", ns, reminder)["status"])["reason"] == "Sent"  # type: ignore[index]
    # One occurrence per slot: D1, D2 (spawned before the jump) and D3 (after it), no repeat of D2.
    rows = [row for row in record.tasks if row["recurring_task_uid"] is not None]
    assert [(row["occurrence"], row["due_at"]) for row in rows] == [
        (1, d1),
        (2, d1 + timedelta(days=1)),
        (3, d1 + timedelta(days=2)),
    ]
    assert third == rows[2]["name"]
    assert len(record.events("task.overdue", subject=f"{ns}/report")) == 1
    # (Its Kubernetes Event "Overdue" appears again: an edit while the clock was behind
    # recomputed the phase as Open, and it turned Overdue a second time.)
    assert [row["phase"] for row in record.tasks if row["name"] == "report"] == ["Overdue"]
    assert len(record.events("reminder.sent")) == 2  # report's, then the barrier's (late)
    # The trace: the scheduler's heartbeat went back with the clock and on again; sent counters +1 each.
    assert metric(after, "todo_reminders_sent_total", timing="on_time") == (
        metric(before, "todo_reminders_sent_total", timing="on_time") + 1
    )
    assert metric(after, "todo_reminders_sent_total", timing="late") == (
        metric(before, "todo_reminders_sent_total", timing="late") + 1
    )
    assert (
        metric(after, "todo_occurrences_spawned_total")
        == metric(before, "todo_occurrences_spawned_total") + 3
    )
    created = [e for e in stack.kube.events(ns, "standup") if e["reason"] == "OccurrenceCreated"]
    assert len(created) == 3, [(e["message"], e["firstTimestamp"]) for e in created]


def test_a_forward_jump_catches_up_once_by_the_policy(inline_stack: Stack) -> None:
    stack = inline_stack
    ns = stack.new_namespace("clock-forward")
    with stack.restore_clock() as t0:
        before = stack.scrape()
        jump = t0 + timedelta(days=3)
        fires = {
            "too-old": t0 + timedelta(minutes=10),  # 71 h late: past the 24 h look-back -> Missed
            "late": jump - timedelta(hours=22),  # within the look-back -> sent once, marked late
            "on-time": jump - timedelta(minutes=2),  # within the 5 min grace -> on time
        }
        for name, fire in fires.items():
            stack.kube.create("tasks", ns, task(name, due_at=jump + timedelta(days=1), reminders=[at(fire)]))
        stack.kube.create("tasks", ns, task("deadline", due_at=t0 + timedelta(hours=1)))
        d1 = _next_nine(t0)
        stack.kube.create("recurringtasks", ns, recurring_task("standup", schedule=_daily_at_nine(d1)))
        first = _occurrences(stack, ns, "standup", 1)["currentTask"]
        assert isinstance(first, str)
        for name, fire in fires.items():
            stack.wait_status(
                "reminders", ns, reminder_name(name, fire), lambda s: s.get("phase") == "Pending", "Pending"
            )
        assert all(
            not stack.smtp.for_reminder(str(r["uid"]))
            for r in stack.rows("SELECT uid::text AS uid FROM reminders WHERE namespace = %s", ns)
        )

        stack.clock.set(jump)  # three days pass at once
        final = {
            name: stack.wait_status(
                "reminders",
                ns,
                reminder_name(name, fire),
                lambda s, want=("Failed" if name == "too-old" else "Sent"): s.get("phase") == want,
                "caught up",
            )
            for name, fire in fires.items()
        }
        stack.wait_status("tasks", ns, "deadline", lambda s: s.get("phase") == "Overdue", "Overdue")
        stack.wait_status("tasks", ns, first, lambda s: s.get("phase") == "Overdue", "Overdue")
        # Occurrence 1 is done three days late: the next one is the first slot after now, not a backlog.
        _complete(stack, ns, first)
        status = _occurrences(stack, ns, "standup", 2)
        scheduler_pass(stack, jump)

        record = assert_whole_record(stack, ns, occurrences={"standup": 2}, reminders_sent=2)
        after = stack.scrape()

    assert {name: condition(body["status"])["reason"] for name, body in final.items()} == {
        "too-old": "Missed",
        "late": "SentLate",
        "on-time": "Sent",
    }
    emails = {name: len(stack.smtp.for_reminder(body["metadata"]["uid"])) for name, body in final.items()}
    assert emails == {"too-old": 0, "late": 1, "on-time": 1}
    late_mail = stack.smtp.for_reminder(final["late"]["metadata"]["uid"])[0]
    assert "This reminder is late" in late_mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    nine = jump.replace(hour=9, minute=0, second=0)
    expected_next = nine if nine > jump else nine + timedelta(days=1)  # the first slot after the jump
    assert datetime.fromisoformat(str(status["nextDueAt"]).replace("Z", "+00:00")) == expected_next
    rows = [row for row in record.tasks if row["recurring_task_uid"] is not None]
    assert [(row["occurrence"], row["due_at"]) for row in rows] == [(1, d1), (2, expected_next)]
    assert len(record.events("task.overdue", subject=f"{ns}/deadline")) == 1
    overdue_events = [e for e in stack.kube.events(ns, "deadline") if e["reason"] == "Overdue"]
    assert len(overdue_events) == 1
    # The trace in metrics: one late, one on time, one missed.
    for name, labels, delta in (
        ("todo_reminders_sent_total", {"timing": "late"}, 1),
        ("todo_reminders_sent_total", {"timing": "on_time"}, 1),
        ("todo_reminders_missed_total", {}, 1),
        ("todo_reminders_failed_total", {}, 0),
    ):
        assert metric(after, name, **labels) == metric(before, name, **labels) + delta, name
