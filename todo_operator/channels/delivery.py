"""Delivering one reminder, exactly once: claim, send, record — retried per policy.

Shared by ``todo-operator notify`` (a CronJob's pod) and the inline
dispatcher. Each attempt runs inside one transaction that holds the
reminder's row lock (see :mod:`todo_operator.store.reminder_rows`); between
attempts the lock is released and the wait is spent outside any transaction.
Attempts are counted in the row, so a Job that is restarted goes on counting
instead of starting over: total attempts stay bounded across layers (F12).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from todo_operator.channels import mail
from todo_operator.clock import Clock
from todo_operator.domain import text, timing
from todo_operator.domain.events import Event
from todo_operator.store import reminder_rows

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    result: Literal["Sent", "Failed", "Skipped"]
    attempts: int = 0
    sent_at: datetime | None = None
    late: bool = False
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class _Failure:
    """Why an attempt failed: ``reason`` goes into the event, ``condition`` into the Ready condition."""

    error: str
    reason: str  # Missed, RecipientNotAllowed, Rejected, RetriesExhausted, Unsendable
    condition: str = "DeliveryFailed"
    final: bool = True
    dead_letter: bool = True

    def one_line_error(self) -> str:
        # lastError is shown in a status, a condition and an event: one line, bounded.
        return text.one_line(self.error)[:1000]


def _delay(policy: mail.RetryPolicy, attempts: int) -> timedelta:
    """The wait after failed attempt number ``attempts``: first, doubling, capped."""
    delay: timedelta = policy.first * (2 ** max(attempts - 1, 0))
    return min(delay, policy.cap)


class ReminderDelivery:
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clock: Clock,
        send: Send,
        sender: str,
        retry: mail.RetryPolicy,
        catch_up: timing.CatchUpPolicy,
        recipients: timing.RecipientPolicy,
        sleep: Sleep = asyncio.sleep,
        link_template: str | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._send = send
        self._sender = sender
        self._retry = retry
        self._catch_up = catch_up
        self._recipients = recipients
        self._sleep = sleep
        self._link_template = link_template

    async def deliver(self, *, uid: str) -> Outcome:
        """Send the reminder unless it is done, taken, not due or missed; retry transient failures."""
        while True:
            outcome, attempts = await self._attempt(uid=uid)
            if outcome is not None:
                return outcome
            await self._sleep(_delay(self._retry, attempts).total_seconds())

    async def _attempt(self, *, uid: str) -> tuple[Outcome | None, int]:
        """One attempt in one transaction: None as the outcome means "wait, then try again"."""
        async with self._pool.connection() as connection, connection.transaction():
            rows = reminder_rows.ReminderRows(connection)  # the lock is held until this transaction ends
            claimed = await rows.claim(uid=uid)
            if claimed is None:
                return Outcome(result="Skipped", reason="already sent, cancelled or being sent"), 0
            now = self._clock.now()
            decision = timing.catch_up(claimed.fire_at, now=now, policy=self._catch_up)
            if decision == "wait":
                return Outcome(result="Skipped", reason="not due yet", attempts=claimed.attempts), 0
            if decision == "missed":
                error = f"missed: due {claimed.fire_at.isoformat()}, more than {self._catch_up.look_back} ago"
                failure = _Failure(error=error, reason="Missed", condition="Missed", dead_letter=False)
                return await self._fail(connection, claimed, failure, at=now, attempts=claimed.attempts), 0
            if not self._recipients.allows(claimed.recipient, owner=claimed.owner):
                error = self._recipients.refusal(claimed.recipient, owner=claimed.owner)
                failure = _Failure(error=error, reason="RecipientNotAllowed", condition="RecipientNotAllowed")
                return await self._fail(connection, claimed, failure, at=now, attempts=claimed.attempts), 0

            late = claimed.late or decision == "send-late"
            attempts = claimed.attempts + 1
            refused = await self._send_once(claimed, late=late, now=now)
            if refused is None:
                await rows.mark_sent(
                    claimed,
                    at=now,
                    attempts=attempts,
                    late=late,
                    event=self._event(
                        claimed, "reminder.sent", attempts=attempts, reason="Late" if late else "OnTime"
                    ),
                )
                logger.info(
                    "reminder %s/%s sent to its recipient (attempt %d)",
                    claimed.namespace,
                    claimed.name,
                    attempts,
                )
                return Outcome(result="Sent", attempts=attempts, sent_at=now, late=late), attempts
            logger.warning(
                "reminder %s/%s attempt %d failed: %s",
                claimed.namespace,
                claimed.name,
                attempts,
                refused.error,
            )
            if refused.final or attempts >= self._retry.max_attempts:
                return await self._fail(connection, claimed, refused, at=now, attempts=attempts), attempts
            await rows.record_failure(claimed, at=now, attempts=attempts, error=refused.error, final=False)
            return None, attempts

    async def _send_once(
        self, claimed: reminder_rows.Claimed, *, late: bool, now: datetime
    ) -> _Failure | None:
        """Compose and send; every error becomes a counted, recorded failure, never an escape.

        An exception escaping here would roll the attempt back, so the reminder
        would be claimed again at once with nothing recorded: a title with a
        line break did exactly that, 145 times a second (issue #16). So what the
        mail code does not classify (a header the mail library refuses, a bad
        link template, a bug) is a permanent failure of this reminder.
        """
        try:
            message = mail.compose(self._mail(claimed, late=late), sender=self._sender, now=now)
            await self._send(message)
        except mail.MailError as error:
            reason = "RetriesExhausted" if error.transient else "Rejected"
            return _Failure(error=str(error), reason=reason, final=not error.transient)
        except Exception as error:
            logger.error("reminder %s/%s cannot be sent", claimed.namespace, claimed.name, exc_info=True)
            return _Failure(error=f"cannot be sent: {type(error).__name__}: {error}", reason="Unsendable")
        return None

    async def _fail(
        self,
        connection: AsyncConnection[Any],
        claimed: reminder_rows.Claimed,
        failure: _Failure,
        *,
        at: datetime,
        attempts: int,
    ) -> Outcome:
        """End the reminder ``Failed``: the row, a ``reminder.failed`` event, a dead letter if retryable."""
        error = failure.one_line_error()
        event = self._event(claimed, "reminder.failed", attempts=attempts, reason=failure.reason)
        await reminder_rows.ReminderRows(connection).record_failure(
            claimed,
            at=at,
            attempts=attempts,
            error=error,
            final=True,
            reason=failure.condition,
            event=event,
            dead_letter=failure.dead_letter,  # an admin can retry it once the cause is fixed
        )
        return Outcome(result="Failed", attempts=attempts, error=error, reason=failure.reason)

    def _mail(self, claimed: reminder_rows.Claimed, *, late: bool) -> mail.ReminderMail:
        link = (
            self._link_template.format(namespace=claimed.namespace, task=claimed.task_name)
            if self._link_template
            else None
        )
        return mail.ReminderMail(
            reminder_uid=claimed.uid,
            recipient=claimed.recipient,
            task_title=claimed.task_title,
            task_due_at=claimed.task_due_at,
            time_zone=claimed.time_zone,
            message=claimed.message,
            late=late,
            link=link,
        )

    @staticmethod
    def _event(
        claimed: reminder_rows.Claimed, type_: Literal["reminder.sent", "reminder.failed"], **data: Any
    ) -> Event:
        return Event(
            type=type_,
            subject=f"{claimed.namespace}/{claimed.name}",
            partition_key=claimed.owner,
            key=f"{type_}:{claimed.uid}",
            data={"task": claimed.task_name, "fireAt": claimed.fire_at.isoformat(), **data},
        )
