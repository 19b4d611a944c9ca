"""F17: a RecurringTask's schedule edited while an occurrence is being spawned.

Completing an occurrence advances its RecurringTask from the *Task's*
handler (``TaskReconciler`` -> ``RecurringTaskReconciler.reconcile`` with the
owner it just read), while an edit of the schedule is handled by the
*RecurringTask's* handler. Kopf serialises handlers per object, not across
objects, so the two can run at once. The race to rule out: the Task's
handler read the old spec, its create of the next occurrence is still on the
wire when the edit lands and is reconciled, and then the old rule's
occurrence appears after all — an occurrence from a rule that no longer
exists, beside (or instead of) the new rule's.

The emulator holds that create (the old rule's next due date) open until the
edit has been reconciled, which makes the bad interleaving certain instead of
rare. Expected afterwards: the new generation decides — the next occurrence
is the new rule's, nothing of the old rule is left open, the status shows
the new rule and ``observedGeneration``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kmock

from tests.faults.lifecycle.record import assert_whole_record
from tests.faults.lifecycle.stack import Stack, hold_requests, recurring_task
from tests.kubeclient import condition


def _due(body: Any) -> datetime | None:
    due = ((body or {}).get("spec") or {}).get("dueAt") if isinstance(body, dict) else None
    return datetime.fromisoformat(due.replace("Z", "+00:00")) if due else None


NEW_RULE = "FREQ=DAILY;BYMINUTE=0;BYHOUR=18"  # written as the engine shows it back in status.rule


def _daily_nine(stack: Stack, ns: str) -> datetime:
    """Create ``review``, daily at 09:00 UTC from the day after tomorrow; return its first due time."""
    day = (stack.clock.now() + timedelta(days=2)).date()
    d1 = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    schedule = {"every": "daily", "start": d1.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}
    stack.kube.create("recurringtasks", ns, recurring_task("review", schedule=schedule))
    return d1


def _edit_rule(stack: Stack, ns: str) -> int:
    edited = stack.kube.patch(
        "recurringtasks", ns, "review", {"spec": {"schedule": {"every": None, "rrule": NEW_RULE}}}
    )
    generation: int = edited["metadata"]["generation"]
    return generation


def _occurrences(stack: Stack, ns: str, count: int) -> dict[str, Any]:
    found: dict[str, Any] = stack.wait_status(
        "recurringtasks", ns, "review", lambda s: s.get("occurrences") == count, f"{count} occurrences"
    )["status"]
    return found


def test_after_an_edit_the_next_occurrences_follow_the_new_rule(cronjob_stack: Stack) -> None:
    """The ordinary sequence: edit, reconciled, then complete: the old rule makes nothing more."""
    stack = cronjob_stack
    ns = stack.new_namespace("schedule-edit")
    d1 = _daily_nine(stack, ns)
    first = _occurrences(stack, ns, 1)
    generation = _edit_rule(stack, ns)
    edited = stack.wait_status(
        "recurringtasks",
        ns,
        "review",
        lambda s: s.get("observedGeneration") == generation,
        "the edit reconciled",
    )["status"]
    assert edited["rule"] == NEW_RULE
    # (The occurrence already open keeps the due time it was made with: the new rule applies from the next.)
    assert edited["currentTask"] == first["currentTask"]

    for count in (2, 3):
        status = _occurrences(stack, ns, count - 1)
        stack.kube.patch("tasks", ns, status["currentTask"], {"spec": {"completed": True}})
    status = _occurrences(stack, ns, 3)
    record = assert_whole_record(stack, ns, occurrences={"review": 3})

    dues = [due for _, due in record.occurrence_dues(status_uid(stack, ns))]
    assert dues == [d1, d1.replace(hour=18), d1.replace(hour=18) + timedelta(days=1)]
    assert datetime.fromisoformat(status["nextDueAt"].replace("Z", "+00:00")) == dues[-1]
    assert (status["observedGeneration"], status["rule"]) == (generation, NEW_RULE)
    assert condition(status)["reason"] == "Scheduled"
    assert len(record.events("recurringtask.updated")) == 1


def _pending_due(body: Any) -> datetime | None:
    """The due time a status patch commits as the next occurrence (``status.pending.dueAt``)."""
    status = (body or {}).get("status") if isinstance(body, dict) else None
    due = ((status or {}).get("pending") or {}).get("dueAt")
    return datetime.fromisoformat(due.replace("Z", "+00:00")) if due else None


def test_an_edit_while_the_next_occurrence_is_being_decided_wins(cronjob_stack: Stack) -> None:
    """F17/F22: the completion's step, decided by the old rule, is in flight when the edit lands.

    Its commit (the status naming the old rule's next occurrence as pending) is held on the wire
    until the edit has been reconciled; released, it is refused (its version is gone) and decided
    again from the edited series, which has moved on already. Nothing of the old rule is ever
    created: the outcome is the edit-then-complete order, with no withdrawn occurrence.
    """
    stack = cronjob_stack
    ns = stack.new_namespace("schedule-edit-race")
    d1 = _daily_nine(stack, ns)
    old_next = d1 + timedelta(days=1)  # the old rule (daily at 09:00) after D1
    new_next = d1.replace(hour=18)  # the new rule (daily at 18:00) after D1 09:00
    first = _occurrences(stack, ns, 1)

    held = hold_requests(
        stack,
        method=kmock.method.PATCH,
        plural="recurringtasks",
        namespace=ns,
        when=lambda b: _pending_due(b) == old_next,
    )
    stack.kube.patch("tasks", ns, first["currentTask"], {"spec": {"completed": True}})
    assert held.reached.wait(30), "the old rule's next occurrence was never committed"
    generation = _edit_rule(stack, ns)
    stack.wait_status(
        "recurringtasks",
        ns,
        "review",
        lambda s: s.get("observedGeneration") == generation and s.get("occurrences") == 2,
        "the edit reconciled, and the series advanced by it",
    )
    held.release()
    stack.wait("the held commit served", lambda: held.served)

    def settled() -> dict[str, Any] | None:
        body = stack.kube.get("recurringtasks", ns, "review")
        open_dues = [_due(t) for t in stack.objects("tasks", ns) if not t["spec"].get("completed")]
        if body and body["status"].get("observedGeneration") == generation and open_dues == [new_next]:
            return body
        return None

    status = stack.wait("the new generation's occurrence and status", settled, timeout=10)["status"]
    record = assert_whole_record(stack, ns, occurrences={"review": 2})
    assert sorted(due for _, due in record.occurrence_dues(status_uid(stack, ns))) == [d1, new_next]
    assert status["rule"] == NEW_RULE
    assert status.get("pending") is None
    assert datetime.fromisoformat(status["nextDueAt"].replace("Z", "+00:00")) == new_next
    assert condition(status)["reason"] == "Scheduled"
    [row] = record.recurring_tasks
    assert (row["generation"], row["rule"], row["next_due_at"]) == (generation, status["rule"], new_next)


def status_uid(stack: Stack, ns: str) -> str:
    body = stack.kube.get("recurringtasks", ns, "review")
    assert body is not None
    uid: str = body["metadata"]["uid"]
    return uid
