"""What a user's text and a refused send can do to delivery: never a header, never a hot loop (#16).

A title with ``\\r\\nBcc: …`` used to make the mail library refuse the
message; the error escaped the attempt, its transaction rolled back and the
inline scheduler claimed the reminder again at once, ~145 times a second,
with nothing recorded. A lone ``\\n`` went out raw inside the header block.
These tests run the real delivery and scheduler against a real PostgreSQL and
a real SMTP server (aiosmtpd), and read the message back with the standard
library's parser: the envelope (``RCPT TO``) says who really got it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.errors import HeaderParseError
from email.message import Message
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.channels.test_delivery import FIRE, Waits, add_reminder, delivery, events
from tests.operator.test_two_dispatchers import NoStatusWrites, NoTasks
from todo_devstack.smtp import SmtpSink
from todo_operator.channels import mail
from todo_operator.clock import ManualClock
from todo_operator.domain import timing
from todo_operator.operator.due_work import DueWork

HOSTILE_TITLES = {
    "crlf-bcc": "Pay rent\r\nBcc: mallory@evil.example",
    "cr-bcc": "Pay rent\rBcc: mallory@evil.example",
    "lf-header": "Pay rent\nX-Injected: yes",
    "lf-no-name": "Pay rent\n continued and raw",
    "line-separator": "Pay rent\u2028Bcc: mallory@evil.example",
    "next-line-c1": "Pay rent\x85Bcc: mallory@evil.example",
    "nul-and-tab": "Pay\x00 rent\tnow",
}


def _state(database_url: str, uid: str) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT phase, attempts, failure_reason, last_error,"
            " (SELECT count(*) FROM dead_letters WHERE reminder_uid = reminders.uid)"
            " FROM reminders WHERE uid = %s",
            (uid,),
        ).fetchone()
    assert found is not None
    return tuple(found)


async def _set(pool: AsyncConnectionPool[Any], uid: str, **columns: str) -> None:
    # Rows written before the CRD refused such text (or by anything that skipped the schema).
    async with pool.connection() as connection:
        for column, value in columns.items():
            await connection.execute(f"UPDATE reminders SET {column} = %s WHERE uid = %s", (value, uid))


@pytest.mark.parametrize("title", HOSTILE_TITLES.values(), ids=HOSTILE_TITLES.keys())
@pytest.mark.parametrize("pooled", [False, True], ids=["one-connection", "smtp-pool"])
async def test_a_title_cannot_add_a_header_or_a_recipient(
    pool: AsyncConnectionPool[Any], smtp: SmtpSink, database_url: str, title: str, pooled: bool
) -> None:
    uid = await add_reminder(pool)
    await _set(pool, uid, task_title=title.replace("\x00", ""))  # PostgreSQL text holds no NUL
    if pooled:
        connections = mail.SmtpPool(settings=mail.SmtpSettings(port=smtp.port, sender="todo@example.com"))
        outcome = await delivery(pool, ManualClock(FIRE), send=connections.send).deliver(uid=uid)
        await connections.close()
    else:
        outcome = await delivery(pool, ManualClock(FIRE), port=smtp.port).deliver(uid=uid)

    assert (outcome.result, outcome.attempts) == ("Sent", 1)
    (message,) = smtp.messages
    assert smtp.envelope_recipients == [["alice@example.com"]]
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    subject = str(message["Subject"])
    assert subject.startswith("Reminder: Pay")
    assert not any(character in subject for character in "\r\n\x85\u2028\x00\t")
    assert [name for name, _ in message.items()] == [
        "Content-Type",
        "MIME-Version",
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "X-Todo-Reminder",
    ]


class _Unsendable(Exception):
    pass


async def _refuse_header(message: Message) -> None:
    # What the mail library raised for a line break in a header (Python's email package).
    raise HeaderParseError("header value appears to contain an embedded header")


async def test_an_error_outside_the_mail_codes_is_one_counted_attempt(
    pool: AsyncConnectionPool[Any], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    uid = await add_reminder(pool)
    waits = Waits()
    sender = delivery(pool, ManualClock(FIRE), send=_refuse_header, waits=waits)
    with caplog.at_level(logging.WARNING, logger="todo_operator"):
        outcome = await sender.deliver(uid=uid)

    assert (outcome.result, outcome.attempts, outcome.reason) == ("Failed", 1, "Unsendable")
    phase, attempts, reason, last_error, dead_letters = _state(database_url, uid)
    assert (phase, attempts, reason, dead_letters) == ("Failed", 1, "DeliveryFailed", 1)
    assert (
        last_error == "cannot be sent: HeaderParseError: header value appears to contain an embedded header"
    )
    assert waits.seconds == []
    assert events(database_url) == ["reminder.failed"]
    # One attempt, one failure line, one line saying why it cannot be sent: no more.
    assert len(caplog.records) == 2


def _scheduler(pool: AsyncConnectionPool[Any], *, send: Any, sleep: Any, passes: list[object]) -> DueWork:
    clock = ManualClock(FIRE)
    return DueWork(
        pool=pool,
        clock=clock,
        kube_api=None,  # type: ignore[arg-type]  # no task falls due in this test
        tasks=NoTasks(),  # type: ignore[arg-type]
        reminders=NoStatusWrites(),  # type: ignore[arg-type]
        delivery=delivery(pool, clock, send=send, waits=sleep),
        mode="inline",
        catch_up=timing.CatchUpPolicy(),
        heartbeat=passes.append,
        hold=timedelta(seconds=2),  # longer than the idle window below, short enough to wait out
    )


async def _passes_while_idle(passes: list[object], *, settle: float = 0.5) -> int:
    """How many scheduler passes happen in ``settle`` seconds once nothing is left to do.

    An idle scheduler waits for its next due instant (none here: up to a
    minute); one that spins makes a pass every few milliseconds.
    """
    before = len(passes)
    await asyncio.sleep(settle)
    return len(passes) - before


async def _wait_for(predicate: Any, *, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_inline_scheduler_records_an_unsendable_reminder_once_and_rests(
    pool: AsyncConnectionPool[Any], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    uid = await add_reminder(pool)
    passes: list[object] = []
    scheduler = _scheduler(pool, send=_refuse_header, sleep=Waits(), passes=passes)
    with caplog.at_level(logging.WARNING, logger="todo_operator"):
        running = asyncio.create_task(scheduler.run())
        try:
            await _wait_for(lambda: _state(database_url, uid)[0] == "Failed")
            idle_passes = await _passes_while_idle(passes)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    assert _state(database_url, uid)[:3] == ("Failed", 1, "DeliveryFailed")
    assert idle_passes <= 1
    assert len(caplog.records) == 2


async def test_a_reminder_waiting_between_retries_does_not_make_the_scheduler_spin(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    """SMTP down: the delivery waits out its backoff while the reminder is still Pending and due."""
    uid = await add_reminder(pool)
    attempted = asyncio.Event()
    backoff = asyncio.Event()  # never set: the delivery stays in its first wait

    async def down(message: Message) -> None:
        attempted.set()
        raise mail.MailError("SMTP server unreachable: connection refused", transient=True)

    async def wait(seconds: float) -> None:
        await backoff.wait()

    passes: list[object] = []
    scheduler = _scheduler(pool, send=down, sleep=wait, passes=passes)
    running = asyncio.create_task(scheduler.run())
    try:
        await asyncio.wait_for(attempted.wait(), timeout=20)
        await _wait_for(lambda: _state(database_url, uid)[1] == 1)
        idle_passes = await _passes_while_idle(passes)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert _state(database_url, uid)[:2] == ("Pending", 1)
    assert idle_passes <= 1


async def test_a_reminder_another_replica_holds_is_looked_at_again_after_a_pause(
    pool: AsyncConnectionPool[Any], smtp: SmtpSink, database_url: str
) -> None:
    """While another replica holds the row's lock, this one's claims are Skipped: it must not spin."""
    uid = await add_reminder(pool)
    passes: list[object] = []

    async def send(message: Message) -> None:
        await mail.send(message, settings=mail.SmtpSettings(port=smtp.port, sender="todo@example.com"))

    scheduler = _scheduler(pool, send=send, sleep=Waits(), passes=passes)
    async with pool.connection() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM reminders WHERE uid = %s FOR UPDATE", (uid,))
        running = asyncio.create_task(scheduler.run())
        try:
            await _wait_for(lambda: len(passes) >= 1)
            idle_passes = await _passes_while_idle(passes)
        except BaseException:
            running.cancel()
            raise
    # The lock is gone: the reminder is sent once, after the pause.
    try:
        await _wait_for(lambda: _state(database_url, uid)[0] == "Sent")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert idle_passes <= 1
    assert _state(database_url, uid)[:2] == ("Sent", 1)
    assert smtp.envelope_recipients == [["alice@example.com"]]


@pytest.mark.parametrize(
    ("recipient", "domains", "sent"),
    [
        ("alice@example.com", frozenset[str](), True),
        ("Alice@EXAMPLE.com", frozenset[str](), True),
        ("ceo@othercompany.example", frozenset[str](), False),
        ("bob@example.com", frozenset[str](), False),
        ("bob@example.com", frozenset({"example.com"}), True),
        ("bob@mail.example.com", frozenset({"example.com"}), False),
        ("ceo@othercompany.example", frozenset({"*"}), True),
    ],
    ids=["owner", "owner-any-case", "outsider", "colleague", "allowed-domain", "subdomain", "anyone"],
)
async def test_reminders_go_only_to_allowed_recipients(
    pool: AsyncConnectionPool[Any],
    smtp: SmtpSink,
    database_url: str,
    recipient: str,
    domains: frozenset[str],
    sent: bool,
) -> None:
    uid = await add_reminder(pool)
    await _set(pool, uid, recipient=recipient, message="Your account is locked: log in at evil.example")
    recipients = timing.RecipientPolicy(domains=domains)
    outcome = await delivery(pool, ManualClock(FIRE), port=smtp.port, recipients=recipients).deliver(uid=uid)

    if sent:
        assert outcome.result == "Sent"
        assert smtp.envelope_recipients == [[recipient]]
        return
    assert (outcome.result, outcome.reason, outcome.attempts) == ("Failed", "RecipientNotAllowed", 0)
    assert smtp.messages == []
    phase, attempts, reason, last_error, dead_letters = _state(database_url, uid)
    assert (phase, attempts, reason, dead_letters) == ("Failed", 0, "RecipientNotAllowed", 1)
    assert last_error.startswith(f"recipient {recipient} is not allowed: reminders go to the task's owner")
