"""F12: retries stacked at several layers stay bounded, and each layer's count is visible.

A reminder e-mail under inline delivery passes through these layers, each of
which may try again on its own:

1. the delivery loop (``channels/delivery.py``): a 4xx from SMTP is retried
   with backoff, up to ``reminder_retries`` + 1 attempts, counted in the
   reminder's row;
2. the scheduler's passes (``operator/due_work.py``): every pass — after
   any wake-up: a clock change, a reconciled reminder ringing the doorbell —
   finds the still-Pending reminder due again;
3. Kopf's retry of a failed handler: a Task or Reminder handler hit by a
   transient API error is run again from the start (0.5 s later here), and
   the run that gets through re-reconciles the reminder (upserting its row,
   ringing the doorbell);
4. a second sender (a restarted operator, a notify Job): it claims the row
   only while it is Pending (``FOR UPDATE SKIP LOCKED``), attempts counted in
   the row, so it goes on counting instead of starting over.

The multiplication to rule out is layer 2 or 3 starting a *new* delivery
sequence while one is going: then SMTP would see 3 x (number of handler
runs) attempts. The test drives layers 2 and 3 while SMTP refuses every
message — the second attempt is held on the wire until Kopf has retried the
Task's handler three times, so the layers certainly overlap — and checks
that the SMTP server was offered exactly ``MAX_ATTEMPTS`` messages, that a
further sender (layer 4) adds none, and that every layer left its count
where an operator sees it: ``status.attempts``, the dead letter,
``todo_reminders_failed_total``, ``todo_dead_letters{kind="reminder"}`` and
``todo_reconcile_errors_total{reason="transient"}``.

The second test is the status half of "visible": the scheduler's write of a
delivery's outcome to the Reminder hit by a transient API error must be
retried, because nothing else looks at a reminder whose row is final.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import kmock

from tests.faults.lifecycle.record import assert_whole_record
from tests.faults.lifecycle.stack import (
    MAX_ATTEMPTS,
    Stack,
    at,
    fail_requests,
    metric,
    reminder_name,
    scheduler_pass,
    task,
)
from tests.kubeclient import condition
from todo_operator.channels import mail
from todo_operator.channels.delivery import ReminderDelivery
from todo_operator.domain.timing import CatchUpPolicy, RecipientPolicy
from todo_operator.store.pool import open_pool

REFUSAL = "451 4.3.0 Mailbox temporarily unavailable"


async def _deliver_again(stack: Stack, uid: str) -> str:
    """A second sender (as a restarted operator or a notify Job would be) for the same reminder."""
    pool = open_pool(stack.database_url, max_size=1)
    await pool.open(wait=True)
    try:

        async def refuse(message: object) -> None:
            raise mail.MailError("not reached: the row is not claimable", transient=True)

        delivery = ReminderDelivery(
            pool=pool,
            clock=stack.clock,
            send=refuse,
            sender="todo@example.com",
            retry=mail.RetryPolicy(retries=5, first=timedelta(milliseconds=10)),
            catch_up=CatchUpPolicy(),
            recipients=RecipientPolicy(),
        )
        outcome = await delivery.deliver(uid=uid)
        return outcome.result
    finally:
        await pool.close()


def test_smtp_refusals_under_handler_retries_and_wake_ups_stay_within_the_attempt_budget(
    inline_stack: Stack,
) -> None:
    stack = inline_stack
    ns = stack.new_namespace("retries")
    t0 = stack.clock.now()
    fire = t0 + timedelta(minutes=10)
    name = reminder_name("invoice", fire)
    stack.kube.create("tasks", ns, task("invoice", due_at=t0 + timedelta(hours=2), reminders=[at(fire)]))
    uid = stack.wait_status("reminders", ns, name, lambda s: s.get("phase") == "Pending", "Pending")[
        "metadata"
    ]["uid"]
    before = stack.scrape()
    offered = stack.smtp.attempts

    # Layer 3: the next status writes of this namespace's Tasks and Reminders fail, so their
    # handlers fail and Kopf runs them again (0.5 s later), each run reconciling the reminder.
    task_faults = fail_requests(
        stack, method=kmock.method.PATCH, plural="tasks", subresource="status", namespace=ns, times=3
    )
    reminder_faults = fail_requests(
        stack, method=kmock.method.PATCH, plural="reminders", subresource="status", namespace=ns, times=3
    )
    stack.smtp.fail_next(REFUSAL, times=10 * MAX_ATTEMPTS)  # SMTP refuses everything, "for now"
    try:
        stack.clock.set(fire + timedelta(minutes=1))  # due: the delivery sequence starts
        stack.wait("the first SMTP attempt", lambda: stack.smtp.attempts > offered)
        stack.smtp.hold_next()  # the second attempt will stay on the wire until released
        # Meanwhile: handler runs (layer 3) and scheduler wake-ups (layer 2).
        stack.kube.patch("tasks", ns, "invoice", {"spec": {"title": "Invoice (edited while retrying)"}})
        stack.kube.patch("reminders", ns, name, {"spec": {"message": "edited while retrying"}})
        for second in range(1, 6):
            stack.clock.set(fire + timedelta(minutes=1, seconds=second))
        assert stack.smtp.reached.wait(30), "no second attempt"
        # Kopf ran the Task's handler again and again while attempt 2 was in flight: the layers overlap.
        stack.wait("three Task handler runs failed and retried", lambda: task_faults.served == 3)
        assert stack.smtp.attempts - offered == 2
        stack.smtp.release()  # refused, like the rest
        failed = stack.wait_status("reminders", ns, name, lambda s: s.get("phase") == "Failed", "Failed")
        stack.wait("every injected API fault served", lambda: reminder_faults.served == 3)

        # After the end: more wake-ups, another handler run, and a second sender (layer 4).
        stack.kube.patch("reminders", ns, name, {"spec": {"message": "edited after it failed"}})
        later = fire + timedelta(minutes=5)
        stack.clock.set(later)
        scheduler_pass(stack, later)
        assert asyncio.run(_deliver_again(stack, uid)) == "Skipped"
        record = assert_whole_record(stack, ns, reminders_sent=0)
        after = stack.scrape()
    finally:
        stack.smtp.forget_failures()

    # Bounded: exactly the budget reached SMTP, whatever ran around it; nothing got through.
    assert stack.smtp.attempts - offered == MAX_ATTEMPTS
    assert stack.smtp.for_reminder(uid) == []
    # Counted, in every place an operator looks.
    final = stack.kube.get("reminders", ns, name)
    assert final is not None
    assert final["status"]["attempts"] == MAX_ATTEMPTS
    assert final["status"]["lastError"] == f"SMTP {REFUSAL.replace(' ', ': ', 1)}"
    assert condition(final["status"])["reason"] == "DeliveryFailed"
    assert failed["status"]["attempts"] == MAX_ATTEMPTS
    assert [(d["reminder_uid"], d["attempts"]) for d in record.dead_letters] == [(uid, MAX_ATTEMPTS)]
    assert [row["payload"]["attempts"] for row in record.events("reminder.failed")] == [MAX_ATTEMPTS]
    assert "DeliveryFailed" in {event["reason"] for event in stack.kube.events(ns, name)}
    for metric_name, labels, delta in (
        ("todo_reminders_failed_total", {}, 1),
        ("todo_dead_letters", {"kind": "reminder"}, 1),
        ("todo_reminders_sent_total", {"timing": "on_time"}, 0),
    ):
        assert metric(after, metric_name, **labels) - metric(before, metric_name, **labels) == delta, (
            metric_name
        )
    # Kopf's layer ran more handler calls than SMTP saw attempts, and counted each failure (the
    # Reminder's status faults may also hit the scheduler's own status write, which is not a handler).
    retried = metric(after, "todo_reconcile_errors_total", kind="Task", reason="transient") - metric(
        before, "todo_reconcile_errors_total", kind="Task", reason="transient"
    )
    assert retried >= task_faults.served == 3


def test_a_failed_status_write_after_a_send_is_repaired(inline_stack: Stack) -> None:
    """The e-mail went out; the Reminder's status must say so even if the first write of it fails."""
    stack = inline_stack
    ns = stack.new_namespace("status-after-send")
    t0 = stack.clock.now()
    fire = t0 + timedelta(minutes=10)
    name = reminder_name("memo", fire)
    stack.kube.create("tasks", ns, task("memo", due_at=t0 + timedelta(hours=2), reminders=[at(fire)]))
    stack.wait_status("reminders", ns, name, lambda s: s.get("phase") == "Pending", "Pending")
    faults = fail_requests(
        stack, method=kmock.method.PATCH, plural="reminders", subresource="status", namespace=ns, times=1
    )
    stack.clock.set(fire + timedelta(minutes=1))
    stack.wait("the status write failed", lambda: faults.served == 1)
    sent = stack.wait_status("reminders", ns, name, lambda s: s.get("phase") == "Sent", "Sent")
    assert (sent["status"]["attempts"], condition(sent["status"])["reason"]) == (1, "Sent")
    record = assert_whole_record(stack, ns, reminders_sent=1)
    assert [row["phase"] for row in record.reminders] == ["Sent"]
