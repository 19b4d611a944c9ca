"""Reminder e-mail: what it says, how it is sent (aiosmtplib), which failures are worth retrying.

SMTP tells transient from permanent failures by its reply codes (RFC 5321
§4.2.1): 4yz means "try again later", 5yz means "this will not work". A
connection that cannot be made or breaks is transient too. Permanent
failures fail fast; transient ones are retried by the caller with
:class:`RetryPolicy` (the seed's 10 retries from 1 s to 512 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib

from todo_operator.domain import text


class MailError(Exception):
    """Sending failed; ``transient`` says whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: str | None = None
    sender: str = "todo-operator@localhost"
    starttls: bool = False
    use_tls: bool = False
    timeout_seconds: float = 30.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff: ``first``, doubling, capped; ``retries`` waits at most."""

    retries: int = 10
    first: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(seconds=512)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def delays(self) -> Iterator[timedelta]:
        delay = self.first
        for _ in range(self.retries):
            yield min(delay, self.cap)
            delay *= 2


@dataclass(frozen=True, kw_only=True)
class ReminderMail:
    """Everything one reminder e-mail says."""

    reminder_uid: str
    recipient: str
    task_title: str
    task_due_at: datetime | None
    time_zone: str
    message: str
    late: bool
    link: str | None = None


def _due_text(mail: ReminderMail) -> str | None:
    if mail.task_due_at is None:
        return None
    local = mail.task_due_at.astimezone(ZoneInfo(mail.time_zone))
    return f"{local:%A %d %B %Y, %H:%M} {local.tzname()}"


def compose(mail: ReminderMail, *, sender: str, now: datetime) -> Message:
    """A plain-text and HTML e-mail; the Message-ID is the reminder's uid (mail clients collapse duplicates).

    Built with the classic (compat32) MIME classes: the modern ``Message``
    parses every header it is given and took a third of the dispatcher's time.
    """
    due = _due_text(mail)
    # The title is one line whatever was stored (domain/text.py): a line break in a header
    # would end it and start another (``Bcc: …``), and the mail library refuses the message.
    title = text.one_line(mail.task_title)
    subject = f"Reminder: {title}" + (f" (due {due})" if due else "")
    lines = [f"Reminder: {title}"]
    if due:
        lines.append(f"Due: {due}")
    if mail.message:
        lines += ["", mail.message]
    if mail.late:
        lines += ["", "(This reminder is late: it could not be sent at its time.)"]
    if mail.link:
        lines += ["", mail.link]

    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
    message = MIMEMultipart("alternative")
    message["From"] = sender
    message["To"] = mail.recipient
    # RFC 2047 encoded words only where needed: an ASCII subject stays readable as is.
    # (typeshed types the value as str; the email package takes a Header as well)
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{mail.reminder_uid}@todo-operator>"
    message["X-Todo-Reminder"] = mail.reminder_uid
    message.attach(MIMEText("\n".join(lines) + "\n", "plain", "utf-8"))
    message.attach(MIMEText(f"<html><body>{paragraphs}</body></html>", "html", "utf-8"))
    return message


def _classify(error: Exception) -> MailError:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        transient = all(400 <= code < 500 for code in codes)
        return MailError(f"recipient refused: {error.recipients[0].message}", transient=transient)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        transient = 400 <= error.code < 500
        return MailError(f"SMTP {error.code}: {error.message}", transient=transient)
    return MailError(f"SMTP server unreachable: {error}", transient=True)


def _connection(settings: SmtpSettings) -> dict[str, Any]:
    """How to reach the SMTP server: the same for one-off sends and pooled connections."""
    return {
        "hostname": settings.host,
        "port": settings.port,
        "username": settings.username,
        "password": settings.password,
        "start_tls": settings.starttls,
        "use_tls": settings.use_tls,
        "timeout": settings.timeout_seconds,
    }


async def send(message: Message, *, settings: SmtpSettings) -> None:
    """Send one message; raise :class:`MailError` saying whether a retry may help."""
    try:
        await aiosmtplib.send(message, **_connection(settings))
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise _classify(error) from error


class SmtpPool:
    """Keeps a few SMTP connections open and reuses them.

    A connection per message costs a TCP handshake, EHLO and QUIT each time;
    a dispatcher that sends hundreds of reminders a second keeps them open
    instead. A connection that failed in any way is closed, never reused.
    """

    def __init__(self, *, settings: SmtpSettings, size: int = 8) -> None:
        self._settings = settings
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(size)

    async def _connected(self) -> aiosmtplib.SMTP:
        with contextlib.suppress(asyncio.QueueEmpty):
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        client = aiosmtplib.SMTP(**_connection(self._settings))
        await client.connect()
        return client

    async def send(self, message: Message) -> None:
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._connected()
                await client.send_message(message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                if client is not None:
                    client.close()
                raise _classify(error) from error
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
