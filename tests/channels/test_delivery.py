"""Delivering a reminder against a real PostgreSQL and a real SMTP server (aiosmtpd).

No real sleeps: the retry waits go through an injected ``sleep`` that only
records how long it was asked to wait.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from todo_devstack.smtp import SmtpSink
from todo_operator.channels import mail
from todo_operator.channels.delivery import ReminderDelivery, Send, Sleep
from todo_operator.clock import ManualClock
from todo_operator.domain import timing
from todo_operator.store import reminder_rows

FIRE = datetime(2026, 12, 9, 17, 0, tzinfo=UTC)
OWNER_ONLY = timing.RecipientPolicy()


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def delivery(
    pool: AsyncConnectionPool[Any],
    clock: ManualClock,
    *,
    port: int = 1,
    waits: Sleep | None = None,
    retries: int = 10,
    send: Send | None = None,
    recipients: timing.RecipientPolicy = OWNER_ONLY,
) -> ReminderDelivery:
    """The delivery under test: SMTP to ``port`` (or ``send``), waits recorded instead of slept."""
    settings = mail.SmtpSettings(port=port, sender="todo@example.com", timeout_seconds=5)

    async def send_by_smtp(message: Message) -> None:
        await mail.send(message, settings=settings)

    return ReminderDelivery(
        pool=pool,
        clock=clock,
        send=send or send_by_smtp,
        sender=settings.sender,
        retry=mail.RetryPolicy(retries=retries),
        catch_up=timing.CatchUpPolicy(),
        recipients=recipients,
        sleep=waits or Waits(),
        link_template="https://todo.example.com/{namespace}/{task}",
    )


def reminder_row(
    *, uid: str, fire_at: datetime = FIRE, name: str = "r1", generation: int = 1
) -> reminder_rows.ReminderWrite:
    """Alice's reminder of her passport task, as the operator records it."""
    return reminder_rows.ReminderWrite(
        uid=uid,
        namespace="team-a",
        name=name,
        task_uid=None,
        task_name="passport",
        task_title="Renew passport",
        task_due_at=datetime(2026, 12, 10, 8, 0, tzinfo=UTC),
        time_zone="Europe/Berlin",
        owner="alice@example.com",
        recipient="alice@example.com",
        message="Bring the old passport",
        fire_at=fire_at,
        phase="Pending",
        delivery="inline",
        generation=generation,
        spec={},
        created_at=FIRE - timedelta(days=1),
        updated_at=FIRE - timedelta(days=1),
    )


async def add_reminder(pool: AsyncConnectionPool[Any], *, fire_at: datetime = FIRE, name: str = "r1") -> str:
    uid = str(uuid.uuid4())
    async with pool.connection() as connection:
        await reminder_rows.ReminderRows(connection).save(reminder_row(uid=uid, fire_at=fire_at, name=name))
    return uid


def row(database_url: str, uid: str) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT phase, attempts, late, last_error IS NOT NULL FROM reminders WHERE uid = %s", (uid,)
        ).fetchone()
    assert found is not None
    return tuple(found)


def events(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as connection:
        return [r[0] for r in connection.execute("SELECT event_type FROM outbox ORDER BY id").fetchall()]


async def test_a_due_reminder_is_sent_once_with_its_content(
    pool: AsyncConnectionPool[Any], smtp: SmtpSink, database_url: str
) -> None:
    uid = await add_reminder(pool)
    outcome = await delivery(pool, ManualClock(FIRE), port=smtp.port).deliver(uid=uid)

    assert (outcome.result, outcome.attempts, outcome.late) == ("Sent", 1, False)
    (message,) = smtp.messages
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "Reminder: Renew passport (due Thursday 10 December 2026, 09:00 CET)"
    assert message["X-Todo-Reminder"] == uid
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "Bring the old passport" in text.get_content()
    assert "<p>Bring the old passport</p>" in html.get_content()
    assert "https://todo.example.com/team-a/passport" in text.get_content()
    assert row(database_url, uid) == ("Sent", 1, False, False)
    assert events(database_url) == ["reminder.sent"]

    again = await delivery(pool, ManualClock(FIRE), port=smtp.port).deliver(uid=uid)
    assert again.result == "Skipped"
    assert len(smtp.messages) == 1


async def test_transient_failures_are_retried_with_exponential_backoff(
    pool: AsyncConnectionPool[Any], smtp: SmtpSink, database_url: str
) -> None:
    uid = await add_reminder(pool)
    smtp.fail_next("451 4.3.0 Try again later", times=3)
    waits = Waits()
    outcome = await delivery(pool, ManualClock(FIRE), port=smtp.port, waits=waits).deliver(uid=uid)

    assert (outcome.result, outcome.attempts) == ("Sent", 4)
    assert waits.seconds == [1.0, 2.0, 4.0]
    assert len(smtp.messages) == 1
    assert row(database_url, uid)[:2] == ("Sent", 4)


async def test_an_unreachable_server_is_retried_then_fails_when_exhausted(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    uid = await add_reminder(pool)
    waits = Waits()
    closed_port = 1  # nothing listens there
    outcome = await delivery(pool, ManualClock(FIRE), port=closed_port, waits=waits, retries=10).deliver(
        uid=uid
    )

    assert (outcome.result, outcome.attempts, outcome.reason) == ("Failed", 11, "RetriesExhausted")
    assert waits.seconds == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]
    assert row(database_url, uid) == ("Failed", 11, False, True)
    assert events(database_url) == ["reminder.failed"]


async def test_a_permanent_failure_fails_fast(
    pool: AsyncConnectionPool[Any], smtp: SmtpSink, database_url: str
) -> None:
    uid = await add_reminder(pool)
    smtp.fail_next("550 5.1.1 No such user")
    waits = Waits()
    outcome = await delivery(pool, ManualClock(FIRE), port=smtp.port, waits=waits).deliver(uid=uid)

    assert (outcome.result, outcome.attempts, outcome.reason) == ("Failed", 1, "Rejected")
    assert outcome.error == "SMTP 550: 5.1.1 No such user"
    assert waits.seconds == []
    assert smtp.messages == []
    assert row(database_url, uid)[0] == "Failed"


async def test_two_concurrent_senders_send_one_email(pool: AsyncConnectionPool[Any], smtp: SmtpSink) -> None:
    uid = await add_reminder(pool)
    clock = ManualClock(FIRE)
    outcomes = await asyncio.gather(
        *(delivery(pool, clock, port=smtp.port).deliver(uid=uid) for _ in range(5))
    )
    assert sorted(outcome.result for outcome in outcomes) == [
        "Sent",
        "Skipped",
        "Skipped",
        "Skipped",
        "Skipped",
    ]
    assert len(smtp.messages) == 1


@pytest.mark.parametrize(
    ("lateness", "result", "late", "emails"),
    [
        (timedelta(minutes=-30), "Skipped", False, 0),
        (timedelta(minutes=3), "Sent", False, 1),
        (timedelta(hours=2), "Sent", True, 1),
        (timedelta(hours=30), "Failed", False, 0),
    ],
    ids=["not-due", "on-time", "late", "missed"],
)
async def test_the_catch_up_policy_applies_at_send_time(
    pool: AsyncConnectionPool[Any], smtp: SmtpSink, lateness: timedelta, result: str, late: bool, emails: int
) -> None:
    uid = await add_reminder(pool)
    outcome = await delivery(pool, ManualClock(FIRE + lateness), port=smtp.port).deliver(uid=uid)
    assert (outcome.result, outcome.late) == (result, late)
    assert len(smtp.messages) == emails
    if late:
        assert "This reminder is late" in smtp.messages[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


async def test_a_non_ascii_title_arrives_intact(pool: AsyncConnectionPool[Any], smtp: SmtpSink) -> None:
    uid = await add_reminder(pool)
    async with pool.connection() as connection:
        await connection.execute(
            "UPDATE reminders SET task_title = 'Reisepass erneuern – München' WHERE uid = %s", (uid,)
        )
    await delivery(pool, ManualClock(FIRE), port=smtp.port).deliver(uid=uid)
    (message,) = smtp.messages
    assert message["Subject"].startswith("Reminder: Reisepass erneuern – München (due ")
    assert message["Message-ID"] == f"<{uid}@todo-operator>"
