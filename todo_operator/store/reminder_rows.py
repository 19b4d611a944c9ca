"""PostgreSQL side of reminders: their rows, the exactly-once send claim, what is due.

The send protocol (used by ``todo-operator notify`` and the inline
dispatcher alike) holds a row lock for the whole of one attempt:

1. ``claim`` — ``SELECT ... FOR UPDATE SKIP LOCKED`` on a reminder that is
   still pending: a second sender (another Job, another replica) skips it;
2. the e-mail is sent while the lock is held;
3. ``mark_sent`` / ``record_failure`` update the row, the task's
   ``reminder_sent`` and append the outbox event — then the transaction
   commits and the lock goes.

A sender that dies mid-attempt loses its connection, PostgreSQL releases the
lock and another sender may try again: at-least-once at the SMTP boundary
(the e-mail's Message-ID is the reminder's uid, so mail clients collapse a
rare duplicate), never a second send once one was recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from todo_operator.domain.events import Event
from todo_operator.domain.scope import EVERY_NAMESPACE, NamespaceScope
from todo_operator.store.repository import Repository, Source

TERMINAL = ("Sent", "Failed", "Cancelled")


@dataclass(frozen=True, kw_only=True)
class ReminderWrite:
    """A Reminder's row as the operator writes it (an upsert by uid, with its events)."""

    uid: str
    namespace: str
    name: str
    task_uid: str | None
    task_name: str
    task_title: str
    task_due_at: datetime | None
    time_zone: str
    owner: str
    recipient: str
    message: str
    fire_at: datetime | None
    phase: str
    delivery: str
    generation: int
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A reminder locked for one delivery attempt."""

    uid: str
    namespace: str
    name: str
    owner: str
    recipient: str
    task_name: str
    task_title: str
    task_due_at: datetime | None
    time_zone: str
    message: str
    fire_at: datetime
    attempts: int
    late: bool
    task_uid: str | None


_UPSERT = """
INSERT INTO reminders (uid, namespace, name, task_uid, task_name, task_title, task_due_at, time_zone, owner,
                       recipient, message, fire_at, phase, delivery, generation, spec, created_at, updated_at)
VALUES (%(uid)s, %(namespace)s, %(name)s, %(task_uid)s, %(task_name)s, %(task_title)s, %(task_due_at)s,
        %(time_zone)s, %(owner)s, %(recipient)s, %(message)s, %(fire_at)s, %(phase)s, %(delivery)s,
        %(generation)s, %(spec)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (uid) DO UPDATE SET
    task_uid = EXCLUDED.task_uid, task_name = EXCLUDED.task_name, task_title = EXCLUDED.task_title,
    task_due_at = EXCLUDED.task_due_at, time_zone = EXCLUDED.time_zone, owner = EXCLUDED.owner,
    recipient = EXCLUDED.recipient, message = EXCLUDED.message, delivery = EXCLUDED.delivery,
    -- Never back to an older generation: it decides whether a cancelled reminder may revive.
    generation = GREATEST(reminders.generation, EXCLUDED.generation), spec = EXCLUDED.spec,
    updated_at = EXCLUDED.updated_at,
    -- A sent or failed reminder stays so: a reconcile running beside a sender must
    -- not turn it back into a pending one (and send it twice). A cancelled one stays so
    -- too, unless the Reminder itself changed since (a newer generation: edited, it is
    -- live again): a reconcile that read its task before the task was completed (another
    -- replica, a stale watch event) must not revive it into an e-mail about a done task.
    fire_at = CASE WHEN reminders.phase IN ('Sent', 'Failed')
                     OR (reminders.phase = 'Cancelled' AND EXCLUDED.generation <= reminders.generation)
                   THEN reminders.fire_at ELSE EXCLUDED.fire_at END,
    phase = CASE WHEN reminders.phase IN ('Sent', 'Failed')
                   OR (reminders.phase = 'Cancelled' AND EXCLUDED.generation <= reminders.generation)
                 THEN reminders.phase ELSE EXCLUDED.phase END
-- A uid never comes back, so a deleted row is final: a late reconcile must not revive it (F23, F25).
WHERE reminders.deleted_at IS NULL
RETURNING phase
"""

_CLAIM = """
SELECT uid::text, namespace, name, owner, recipient, task_name, task_title, task_due_at, time_zone, message,
       fire_at, attempts, late, task_uid::text
FROM reminders
WHERE uid = %s AND phase IN ('Pending', 'Scheduled') AND deleted_at IS NULL AND fire_at IS NOT NULL
FOR UPDATE SKIP LOCKED
"""


async def _refresh_task_reminder(connection: AsyncConnection[Any], *, task_uid: str | None) -> None:
    # The seed's columns on tasks: the earliest pending reminder and whether all were sent.
    if task_uid is None:
        return
    await connection.execute(
        """
        UPDATE tasks SET
            reminder_at = (SELECT min(fire_at) FROM reminders
                           WHERE task_uid = %(task)s AND phase IN ('Pending', 'Scheduled')
                           AND deleted_at IS NULL),
            reminder_sent = EXISTS (SELECT 1 FROM reminders WHERE task_uid = %(task)s AND phase = 'Sent')
                AND NOT EXISTS (SELECT 1 FROM reminders WHERE task_uid = %(task)s
                                AND phase IN ('Pending', 'Scheduled') AND deleted_at IS NULL)
        WHERE uid = %(task)s
        """,
        {"task": task_uid},
    )


@dataclass(frozen=True, kw_only=True)
class ReminderState:
    """Where a reminder's delivery stands, as its live row says (what the Reminder's status shows)."""

    uid: str
    phase: str
    owner: str
    fire_at: datetime | None
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    late: bool
    failure_reason: str | None


Ref = tuple[str, str, str]  # (uid, namespace, name)


@dataclass(frozen=True, kw_only=True)
class Target:
    """A live reminder's object and the generation its row was recorded at (what a trigger checks)."""

    namespace: str
    name: str
    generation: int


class ReminderRows(Repository):
    """Reminders' rows: the operator's writes, the send protocol's claim and outcome, what is due.

    What is due is looked for in ``scope``'s namespaces only: an operator shard finds the work
    of the objects it serves, not its neighbours' (docs/ARCHITECTURE.md, "Shards").
    """

    def __init__(self, source: Source, *, scope: NamespaceScope = EVERY_NAMESPACE) -> None:
        super().__init__(source)
        self._scope_parameters: tuple[list[str], ...]
        if scope.whole_cluster:
            self._in_scope, self._scope_parameters = "", ()
        else:
            self._in_scope = " AND namespace ~ ANY(%s::text[]) AND NOT namespace ~ ANY(%s::text[])"
            self._scope_parameters = scope.sql_regexes()

    async def save(self, row: ReminderWrite, *, events: Sequence[Event] = ()) -> str:
        """Upsert a reminder with its events; return the phase the row holds afterwards.

        ``"Deleted"``, with nothing recorded, for a reminder whose row is marked deleted.
        """
        parameters = dict(vars(row))
        parameters["spec"] = Jsonb(row.spec)
        async with self._transaction() as connection:
            cursor = await connection.execute(_UPSERT, parameters)
            stored = await cursor.fetchone()
            if stored is None:
                return "Deleted"
            await _refresh_task_reminder(connection, task_uid=row.task_uid)
            await self._append_events(connection, events)
        phase: str = stored[0]
        return phase

    async def claim(self, *, uid: str) -> Claimed | None:
        """Lock a pending reminder for one attempt (in the caller's transaction); None if taken or done."""
        async with self._connection() as connection:
            cursor = await connection.execute(_CLAIM, (uid,))
            found = await cursor.fetchone()
            if found is None:
                return None
            keys = (
                *("uid", "namespace", "name", "owner", "recipient", "task_name", "task_title", "task_due_at"),
                *("time_zone", "message", "fire_at", "attempts", "late", "task_uid"),
            )
            return Claimed(**dict(zip(keys, found, strict=True)))

    async def mark_sent(
        self,
        claimed: Claimed,
        *,
        at: datetime,
        attempts: int,
        late: bool,
        event: Event,
    ) -> None:
        async with self._connection() as connection:
            await connection.execute(
                "UPDATE reminders SET phase = 'Sent', sent_at = %s, attempts = %s, late = %s,"
                " last_error = NULL,"
                " updated_at = %s WHERE uid = %s",
                (at, attempts, late, at, claimed.uid),
            )
            await _refresh_task_reminder(connection, task_uid=claimed.task_uid)
            await self._append_events(connection, [event])

    async def record_failure(
        self,
        claimed: Claimed,
        *,
        at: datetime,
        attempts: int,
        error: str,
        final: bool,
        reason: str | None = None,
        event: Event | None = None,
        dead_letter: bool = False,
    ) -> None:
        """Count a failed attempt; ``final`` ends it ``Failed`` for ``reason`` (a dead letter: retryable)."""
        async with self._connection() as connection:
            await connection.execute(
                "UPDATE reminders SET attempts = %s, last_error = %s, updated_at = %s,"
                " phase = CASE WHEN %s THEN 'Failed' ELSE phase END,"
                " failure_reason = CASE WHEN %s THEN %s ELSE failure_reason END WHERE uid = %s",
                (attempts, error, at, final, final, reason, claimed.uid),
            )
            if final:
                await _refresh_task_reminder(connection, task_uid=claimed.task_uid)
            if event is not None:
                await self._append_events(connection, [event])
            if final and dead_letter and event is not None:
                # Retryable by an admin (GET/POST /api/v1/admin/dead-letters): see store/outbox.py.
                await connection.execute(
                    "INSERT INTO dead_letters (reminder_uid, event_id, topic, payload, attempts, last_error,"
                    " failed_at, event_type, subject, partition_key, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        claimed.uid,
                        event.id,
                        event.topic,
                        Jsonb(event.data),
                        attempts,
                        error,
                        at,
                        event.type,
                        event.subject,
                        event.partition_key,
                        at,
                    ),
                )

    async def set_phase(
        self,
        *,
        uid: str,
        phase: str,
        at: datetime,
        error: str | None = None,
        reason: str | None = None,
        events: Sequence[Event] = (),
    ) -> bool:
        """Move a reminder not yet ended to ``phase`` (Cancelled, or Failed for ``reason``); False if done."""
        async with self._transaction() as connection:
            cursor = await connection.execute(
                "UPDATE reminders SET phase = %s, last_error = COALESCE(%s, last_error), updated_at = %s,"
                " failure_reason = %s"
                " WHERE uid = %s AND phase NOT IN ('Sent', 'Failed', 'Cancelled') RETURNING"
                " task_uid::text",
                (phase, error, at, reason, uid),
            )
            changed = await cursor.fetchone()
            if changed is None:
                return False
            await _refresh_task_reminder(connection, task_uid=changed[0])
            await self._append_events(connection, events)
            return True

    async def mark_deleted(self, *, uid: str, at: datetime) -> None:
        """The Reminder object is being deleted: its row stays (the history) but gives up its name.

        Without this, a Reminder made again under the same name (a Task deleted and
        re-created) could not be recorded: ``reminders_live_name`` is unique among
        rows not marked deleted.
        """
        async with self._transaction() as connection:
            cursor = await connection.execute(
                "UPDATE reminders SET deleted_at = COALESCE(deleted_at, %s) WHERE uid = %s"
                " RETURNING task_uid::text",
                (at, uid),
            )
            changed = await cursor.fetchone()
            if changed is not None:
                await _refresh_task_reminder(connection, task_uid=changed[0])

    async def find(self, *, namespace: str, name: str) -> ReminderState | None:
        """The live row of a reminder, by name (what ``todo-operator notify`` is given)."""
        async with (
            self._connection() as connection,
            connection.cursor(row_factory=class_row(ReminderState)) as cursor,
        ):
            await cursor.execute(
                "SELECT uid::text AS uid, phase, owner, fire_at, attempts, sent_at, last_error, late,"
                " failure_reason"
                " FROM reminders WHERE namespace = %s AND name = %s AND deleted_at IS NULL",
                (namespace, name),
            )
            return await cursor.fetchone()

    async def target(self, *, uid: str) -> Target | None:
        """The live reminder ``uid`` names, with its recorded generation; None if deleted, unknown or
        out of scope (a job that its namespace's former shard scheduled)."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT namespace, name, generation FROM reminders WHERE uid = %s AND deleted_at IS NULL"
                + self._in_scope,
                (uid, *self._scope_parameters),
            )
            found = await cursor.fetchone()
        return Target(namespace=found[0], name=found[1], generation=found[2]) if found else None

    async def names_for_task(self, *, namespace: str, task_uid: str) -> list[str]:
        """The reminders recorded for a task (made from its spec or by people)."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT name FROM reminders WHERE namespace = %s AND task_uid = %s AND deleted_at IS NULL",
                (namespace, task_uid),
            )
            return [row[0] for row in await cursor.fetchall()]

    async def due_inline(self, *, now: datetime, limit: int, excluding: Sequence[str] = ()) -> list[Ref]:
        """Inline reminders whose moment has come, oldest first, but those ``excluding`` (already in hand)."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT uid::text, namespace, name FROM reminders WHERE phase = 'Pending' AND"
                " delivery = 'inline'"
                " AND deleted_at IS NULL AND fire_at <= %s AND uid <> ALL(%s::uuid[])"
                + self._in_scope
                + " ORDER BY fire_at LIMIT %s",
                (now, list(excluding), *self._scope_parameters, limit),
            )
            return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]

    async def next_inline_fire(self, *, excluding: Sequence[str] = ()) -> datetime | None:
        """When the next inline reminder falls due, leaving out those ``excluding`` (already in hand)."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT min(fire_at) FROM reminders WHERE phase = 'Pending' AND delivery = 'inline'"
                " AND deleted_at IS NULL AND uid <> ALL(%s::uuid[])" + self._in_scope,
                (list(excluding), *self._scope_parameters),
            )
            found = await cursor.fetchone()
            return found[0] if found else None

    async def missed_cronjobs(self, *, before: datetime, limit: int) -> list[Ref]:
        """Reminders triggered outside the operator (a CronJob, a Dapr job) whose moment passed
        ``before`` with nothing sent and no catch-up yet."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT uid::text, namespace, name FROM reminders WHERE phase = 'Scheduled' AND"
                " delivery IN ('cronjob', 'dapr-jobs')"
                " AND NOT late AND deleted_at IS NULL AND fire_at <= %s"
                + self._in_scope
                + " ORDER BY fire_at LIMIT %s",
                (before, *self._scope_parameters, limit),
            )
            return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]

    async def next_cronjob_check(self) -> datetime | None:
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT min(fire_at) FROM reminders WHERE phase = 'Scheduled' AND delivery IN"
                " ('cronjob', 'dapr-jobs') AND NOT late"
                " AND deleted_at IS NULL" + self._in_scope,
                self._scope_parameters,
            )
            found = await cursor.fetchone()
            return found[0] if found else None

    async def mark_late(self, *, uid: str) -> None:
        """A catch-up send was started for this reminder: it is late, and not to be caught up again."""
        async with self._connection() as connection:
            await connection.execute("UPDATE reminders SET late = true WHERE uid = %s", (uid,))

    async def next_open_task_due(self) -> datetime | None:
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT min(due_at) FROM tasks WHERE phase = 'Open' AND due_at IS NOT NULL AND"
                " deleted_at IS NULL" + self._in_scope,
                self._scope_parameters,
            )
            found = await cursor.fetchone()
            return found[0] if found else None

    async def open_tasks_due(self, *, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(namespace, name) of open tasks whose due time has passed: they are about to turn Overdue."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT namespace, name FROM tasks WHERE phase = 'Open' AND due_at <= %s AND"
                " deleted_at IS NULL" + self._in_scope + " ORDER BY due_at LIMIT %s",
                (now, *self._scope_parameters, limit),
            )
            return [(row[0], row[1]) for row in await cursor.fetchall()]
