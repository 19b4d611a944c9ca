"""Reminder timing: when one fires, what it is called, what to do when it was missed.

Pure functions; the operator, the dispatcher and ``todo-operator notify`` all
decide through these, so the catch-up policy is one policy:

* a reminder fires at ``at``, or ``before`` the task's ``dueAt``;
* one whose moment passed less than ``grace`` ago is simply on time;
* one that is later than that but within the look-back (default 24 h) is
  sent once, marked late;
* one older than the look-back is not sent: it ends ``Failed``/``Missed``.
  After a long outage this keeps a backlog from becoming an e-mail storm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from todo_operator.domain.resources import ReminderOffset, ReminderSpec, parse_duration

MAX_NAME_LENGTH = 253
# CronJob names are limited to 52 characters (the controller appends 11 for its Jobs).
MAX_CRONJOB_NAME_LENGTH = 52

Decision = Literal["wait", "send", "send-late", "missed"]


class ReminderError(ValueError):
    """A reminder that cannot fire (e.g. ``before`` on a task without ``dueAt``)."""


@dataclass(frozen=True, kw_only=True)
class CatchUpPolicy:
    grace: timedelta = timedelta(minutes=5)
    look_back: timedelta = timedelta(hours=24)
    # A CronJob fires at the start of the reminder's minute, up to 59 s before it.
    early: timedelta = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class JobRetries:
    """A Dapr job's failure policy: how the Scheduler tries again when the operator did not answer."""

    interval: timedelta = timedelta(seconds=10)
    max_retries: int = 30  # five minutes: the grace period, after which the catch-up takes over


def bounded_name(base: str, suffix: str, *, limit: int = MAX_NAME_LENGTH) -> str:
    """``<base>-<suffix>``, shortened with a stable hash of ``base`` when too long."""
    if len(base) + 1 + len(suffix) <= limit:
        return f"{base}-{suffix}"
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = max(limit - len(suffix) - len(digest) - 2, 1)
    return f"{base[:keep].rstrip('-.')}-{digest}-{suffix}"


def fire_at(entry: ReminderOffset | ReminderSpec, *, due_at: datetime | None) -> datetime:
    """The instant a reminder fires."""
    if entry.at is not None:
        return entry.at.astimezone(UTC)
    assert entry.before is not None  # the models guarantee exactly one of at/before
    if due_at is None:
        raise ReminderError("the task has no dueAt, so 'before' has nothing to count back from")
    try:
        return (due_at - parse_duration(entry.before)).astimezone(UTC)
    except OverflowError:  # 999999999d before any dueAt, or 1d before 0001-01-01
        raise ReminderError(
            f"{entry.before} before {due_at.isoformat()} is before the year 1: the reminder can never fire"
        ) from None


def entry_suffix(entry: ReminderOffset) -> str:
    """A stable name part for one entry of ``Task.spec.reminders``: ``before-1h``, ``at-20261209t1700``."""
    if entry.before is not None:
        return f"before-{entry.before}"
    assert entry.at is not None
    return f"at-{entry.at.astimezone(UTC):%Y%m%dt%H%M}"


def reminder_name(task: str, entry: ReminderOffset) -> str:
    return bounded_name(task, entry_suffix(entry))


def cronjob_name(reminder: str) -> str:
    return bounded_name(reminder, "mail", limit=MAX_CRONJOB_NAME_LENGTH)


def cron_schedule(instant: datetime) -> str:
    """The cron line for the minute of ``instant`` in UTC (the CronJob sets ``timeZone: Etc/UTC``)."""
    utc = instant.astimezone(UTC)
    return f"{utc.minute} {utc.hour} {utc.day} {utc.month} *"


def catch_up(fire: datetime, *, now: datetime, policy: CatchUpPolicy) -> Decision:
    """What to do with a reminder due at ``fire`` when looking at it at ``now``."""
    if fire - now > policy.early:
        return "wait"
    lateness = now - fire
    if lateness <= policy.grace:
        return "send"
    if lateness <= policy.look_back:
        return "send-late"
    return "missed"


@dataclass(frozen=True, kw_only=True)
class RecipientPolicy:
    """Who a reminder may be sent to, checked at send time.

    Anyone allowed to create a Reminder in a namespace could otherwise make the
    company's mail server send any text to any address (``spec.to`` set to an
    outsider, a phishing ``message``). By default a reminder goes to its task's
    owner only; ``domains`` widens that to every address of those domains
    (``example.com`` matches ``bob@example.com``, not ``bob@mail.example.com``:
    list each), and ``*`` allows any address (a mail server of your own that
    enforces its own rules). The chart's admission policy refuses such specs
    earlier, when it is installed; this holds on every cluster.
    """

    domains: frozenset[str] = frozenset()

    def allows(self, recipient: str, *, owner: str) -> bool:
        if "*" in self.domains:
            return True
        # Domains are case-insensitive (RFC 5321 §2.4); local parts are the server's to decide,
        # and mail servers treat them case-insensitively in practice: compare the whole address so.
        if recipient.casefold() == owner.casefold():
            return True
        _, at, domain = recipient.rpartition("@")
        return bool(at) and domain.casefold() in self.domains

    def refusal(self, recipient: str, *, owner: str) -> str:
        """Why ``recipient`` is refused, for ``lastError`` and the Ready condition."""
        allowed = ", ".join(sorted(self.domains)) if self.domains else "none"
        return (
            f"recipient {recipient} is not allowed: reminders go to the task's owner ({owner})"
            f" or to the allowed domains ({allowed}; TODO_REMINDER_RECIPIENT_DOMAINS)"
        )
