"""Inline delivery and the scheduler: the operator sends due reminders itself, turns tasks Overdue,
and applies the catch-up policy after an outage — all driven by a clock the tests move.

This module runs its own operator (inline mode) against its own emulator,
database and SMTP sink, because it moves its clock far ahead.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import kube_emulator as apiserver
from tests.kubeclient import KubeClient, condition
from tests.stacks import event_types, operator_settings
from todo_devstack import postgres
from todo_devstack.operator_thread import OperatorThread
from todo_devstack.smtp import SmtpSink
from todo_operator.clock import ManualClock
from todo_operator.domain import crds


@dataclass
class Stack:
    kube: KubeClient
    clock: ManualClock
    smtp: SmtpSink
    database_url: str

    def outbox(self, namespace: str) -> list[str]:
        return event_types(self.database_url, namespace)


@pytest.fixture(scope="module")
def stack(
    postgres_server: postgres.ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database_url = postgres_server.create_database("inline", template="todo_template")
    clock = ManualClock(datetime.now(tz=UTC).replace(microsecond=0))
    folder = pathlib.Path(tmp_path_factory.mktemp("mail"))
    with apiserver.ApiServerThread(crds=crds.all_crds()) as api, SmtpSink(folder=folder) as smtp:
        settings = operator_settings(database_url=database_url, api_url=api.url, smtp_port=smtp.port)
        with OperatorThread(settings, clock=clock):
            kube = KubeClient(api.url)
            yield Stack(kube=kube, clock=clock, smtp=smtp, database_url=database_url)
            kube.close()


_namespaces = iter(range(1, 1000))


@pytest.fixture
def ns(stack: Stack) -> str:
    name = f"inline-{next(_namespaces)}"
    stack.kube.create_namespace(name)
    return name


def task(name: str, *, due_at: datetime, reminders: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "title": name.title(),
            "owner": "alice@example.com",
            "dueAt": due_at.isoformat(),
            "reminders": reminders,
        },
    }


def wait_phase(stack: Stack, namespace: str, name: str, phase: str) -> dict[str, Any]:
    return stack.kube.wait_for_status(
        "reminders", namespace, name, lambda s: s.get("phase") == phase, what=phase
    )


def test_due_reminders_arrive_in_order(stack: Stack, ns: str) -> None:
    now = stack.clock.now()
    before = len(stack.smtp.messages)
    for minutes, name in ((30, "third"), (10, "first"), (20, "second")):
        at = now + timedelta(minutes=minutes)
        stack.kube.create(
            "tasks", ns, task(name, due_at=at + timedelta(hours=1), reminders=[{"at": at.isoformat()}])
        )
        wait_phase(stack, ns, f"{name}-at-{at.astimezone(UTC):%Y%m%dt%H%M}", "Pending")
    assert len(stack.smtp.messages) == before  # nothing is due yet

    # Time passes: each arrives at its minute, and only then (due together, they would go in parallel).
    for step, expected in ((15, "First"), (25, "Second"), (35, "Third")):
        stack.clock.set(now + timedelta(minutes=step))
        arrived = stack.smtp.wait_for(before + 1)[before:]
        assert [message["Subject"].split(" (")[0] for message in arrived] == [f"Reminder: {expected}"]
        before += 1
    for name, minutes in (("first", 10), ("second", 20), ("third", 30)):
        at = now + timedelta(minutes=minutes)
        sent = wait_phase(stack, ns, f"{name}-at-{at.astimezone(UTC):%Y%m%dt%H%M}", "Sent")
        assert sent["status"]["attempts"] == 1
    assert stack.outbox(ns).count("reminder.sent") == 3


def test_a_task_completed_before_its_reminder_sends_nothing(stack: Stack, ns: str) -> None:
    at = stack.clock.now() + timedelta(minutes=10)
    stack.kube.create(
        "tasks", ns, task("done-early", due_at=at + timedelta(hours=1), reminders=[{"at": at.isoformat()}])
    )
    name = f"done-early-at-{at.astimezone(UTC):%Y%m%dt%H%M}"
    wait_phase(stack, ns, name, "Pending")
    stack.kube.patch("tasks", ns, "done-early", {"spec": {"completed": True}})
    wait_phase(stack, ns, name, "Cancelled")

    before = len(stack.smtp.messages)
    # A later reminder elsewhere is the barrier: once it arrived, the cancelled one had its chance.
    later = at + timedelta(minutes=5)
    stack.kube.create(
        "tasks", ns, task("barrier", due_at=later + timedelta(hours=1), reminders=[{"at": later.isoformat()}])
    )
    wait_phase(stack, ns, f"barrier-at-{later.astimezone(UTC):%Y%m%dt%H%M}", "Pending")
    stack.clock.advance(timedelta(minutes=20))
    arrived = stack.smtp.wait_for(before + 1)[before:]
    assert [message["Subject"].split(" (")[0] for message in arrived] == ["Reminder: Barrier"]
    assert "reminder.cancelled" in stack.outbox(ns)


def test_an_open_task_turns_overdue_when_its_time_passes(stack: Stack, ns: str) -> None:
    due = stack.clock.now() + timedelta(hours=1)
    stack.kube.create("tasks", ns, task("report", due_at=due, reminders=[]))
    stack.kube.wait_for_status("tasks", ns, "report", lambda s: s.get("phase") == "Open", what="Open")

    stack.clock.advance(timedelta(hours=2))
    overdue = stack.kube.wait_for_status(
        "tasks", ns, "report", lambda s: s.get("phase") == "Overdue", what="Overdue"
    )
    assert condition(overdue["status"])["reason"] == "Overdue"
    stack.kube.wait_for("task.overdue recorded", lambda: "task.overdue" in stack.outbox(ns))
    assert "Overdue" in {event["reason"] for event in stack.kube.events(ns, "report")}


@pytest.mark.parametrize(
    ("count", "outage", "sent"),
    [(1, timedelta(hours=2), True), (5, timedelta(hours=2), True), (105, timedelta(hours=30), False)],
    ids=["1-late", "5-late", "105-missed"],
)
def test_catch_up_after_an_outage(stack: Stack, ns: str, count: int, outage: timedelta, sent: bool) -> None:
    at = stack.clock.now() + timedelta(minutes=10)
    names = []
    for index in range(count):
        stack.kube.create(
            "tasks", ns, task(f"t{index}", due_at=at + timedelta(days=3), reminders=[{"at": at.isoformat()}])
        )
        names.append(f"t{index}-at-{at.astimezone(UTC):%Y%m%dt%H%M}")
    for name in names:
        wait_phase(stack, ns, name, "Pending")
    before = len(stack.smtp.messages)

    stack.clock.advance(outage)  # as if the operator had been down all that time
    for name in names:
        final = wait_phase(stack, ns, name, "Sent" if sent else "Failed")
        assert condition(final["status"])["reason"] == ("SentLate" if sent else "Missed")
    if sent:
        arrived = stack.smtp.wait_for(before + count)[before:]
        assert all(
            "This reminder is late" in m.get_body(preferencelist=("plain",)).get_content() for m in arrived
        )  # type: ignore[union-attr]
    assert len(stack.smtp.messages) == before + (count if sent else 0)  # once each, or never
    assert stack.outbox(ns).count("reminder.sent" if sent else "reminder.failed") == count


def test_a_refused_reminder_is_dead_lettered_and_an_admin_retry_sends_it(stack: Stack, ns: str) -> None:
    import asyncio

    from todo_operator.events.deadletters import DeadLetters
    from todo_operator.store.outbox import OutboxStore
    from todo_operator.store.pool import open_pool

    at = stack.clock.now() + timedelta(minutes=10)
    stack.kube.create(
        "tasks", ns, task("refused", due_at=at + timedelta(hours=1), reminders=[{"at": at.isoformat()}])
    )
    name = f"refused-at-{at.astimezone(UTC):%Y%m%dt%H%M}"
    wait_phase(stack, ns, name, "Pending")
    before = len(stack.smtp.messages)
    stack.smtp.fail_next("550 5.1.1 Mailbox unavailable")
    stack.clock.advance(timedelta(minutes=11))
    failed = wait_phase(stack, ns, name, "Failed")
    assert condition(failed["status"])["reason"] == "DeliveryFailed"
    assert failed["status"]["lastError"] == "SMTP 550: 5.1.1 Mailbox unavailable"

    async def retry() -> list[bool]:
        pool = open_pool(stack.database_url, max_size=2)
        await pool.open(wait=True)
        try:
            letters = DeadLetters(store=OutboxStore(pool), clock=stack.clock)
            waiting = [letter for letter in await letters.list() if letter.subject == f"{ns}/{name}"]
            assert [letter.reminder_uid is not None for letter in waiting] == [True]
            return [(await letters.retry(dead_letter_id=letter.id)).requeued for letter in waiting]
        finally:
            await pool.close()

    assert asyncio.run(retry()) == [True]
    stack.clock.advance(timedelta(seconds=1))  # wakes the scheduler, as a new reminder would
    sent = wait_phase(stack, ns, name, "Sent")
    assert sent["status"]["attempts"] == 1  # the retry starts the count over
    assert len(stack.smtp.wait_for(before + 1)) == before + 1
