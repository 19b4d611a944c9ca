"""PostgreSQL writes of the operator: one transaction per change, with its events.

Each method is a unit of work: the resource's row is upserted and the events
describing the change are appended to the outbox in the same transaction, so
an event is published if and only if the change it describes was recorded.
Rows are keyed by the object's uid; outbox rows by their derived event id
(``ON CONFLICT DO NOTHING``), which makes every method safe to call again
after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from todo_operator.domain.events import Event
from todo_operator.store.repository import Repository


@dataclass(frozen=True, kw_only=True)
class TaskWrite:
    """A Task's row as the operator writes it (an upsert by uid, with its events)."""

    uid: str
    namespace: str
    name: str
    owner: str
    title: str
    description: str
    priority: str
    tags: Sequence[str]
    due_at: datetime | None
    completed: bool
    completed_at: datetime | None
    phase: str
    recurring_task_uid: str | None
    occurrence: int | None
    recurring_pattern: str | None
    recurring_end_date: datetime | None
    next_occurrence: datetime | None
    reminder_at: datetime | None
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class RecurringTaskWrite:
    """A RecurringTask's row as the operator writes it (an upsert by uid, with its events)."""

    uid: str
    namespace: str
    name: str
    owner: str
    title: str
    rule: str | None
    time_zone: str
    anchor: str
    phase: str
    current_task: str | None
    next_due_at: datetime | None
    occurrences: int
    last_completed_at: datetime | None
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RecordNotFound(LookupError):
    """The row is not (yet) there: the handler that records it has not run."""


class RecordDeleted(Exception):
    """The object (or, for an occurrence, its series) is recorded as deleted: nothing more is recorded.

    ``series`` says which: an occurrence of a deleted series is not the user's to keep.
    """

    def __init__(self, message: str, *, series: bool) -> None:
        super().__init__(message)
        self.series = series


async def _deleted(connection: AsyncConnection[Any], statement: str, uid: str) -> bool:
    cursor = await connection.execute(statement, (uid,))
    found = await cursor.fetchone()
    return bool(found and found[0])


_TASK_UPSERT = """
INSERT INTO tasks (uid, namespace, name, owner, title, description, priority, tags, due_at, completed,
                   completed_at, phase, recurring_task_uid, occurrence, recurring_pattern, recurring_end_date,
                   next_occurrence, reminder_at, generation, spec, status, created_at, updated_at)
VALUES (%(uid)s, %(namespace)s, %(name)s, %(owner)s, %(title)s, %(description)s, %(priority)s, %(tags)s,
        %(due_at)s, %(completed)s, %(completed_at)s, %(phase)s, %(recurring_task_uid)s, %(occurrence)s,
        %(recurring_pattern)s, %(recurring_end_date)s, %(next_occurrence)s, %(reminder_at)s, %(generation)s,
        %(spec)s, %(status)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (uid) DO UPDATE SET
    owner = EXCLUDED.owner, title = EXCLUDED.title, description = EXCLUDED.description,
    priority = EXCLUDED.priority, tags = EXCLUDED.tags, due_at = EXCLUDED.due_at,
    completed = EXCLUDED.completed,
    -- The first recorded completion instant wins: a re-run must not move it.
    completed_at = CASE WHEN EXCLUDED.completed THEN COALESCE(tasks.completed_at, EXCLUDED.completed_at) END,
    phase = EXCLUDED.phase, recurring_task_uid = EXCLUDED.recurring_task_uid,
    occurrence = EXCLUDED.occurrence, recurring_pattern = EXCLUDED.recurring_pattern,
    recurring_end_date = EXCLUDED.recurring_end_date, next_occurrence = EXCLUDED.next_occurrence,
    reminder_at = EXCLUDED.reminder_at, generation = EXCLUDED.generation, spec = EXCLUDED.spec,
    status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
RETURNING completed_at
"""

_RECURRING_TASK_UPSERT = """
INSERT INTO recurring_tasks (uid, namespace, name, owner, title, rule, time_zone, anchor, phase, current_task,
                             next_due_at, occurrences, last_completed_at, generation, spec, status,
                             created_at, updated_at)
VALUES (%(uid)s, %(namespace)s, %(name)s, %(owner)s, %(title)s, %(rule)s, %(time_zone)s, %(anchor)s,
        %(phase)s, %(current_task)s, %(next_due_at)s, %(occurrences)s, %(last_completed_at)s,
        %(generation)s, %(spec)s, %(status)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (uid) DO UPDATE SET
    owner = EXCLUDED.owner, title = EXCLUDED.title, rule = EXCLUDED.rule, time_zone = EXCLUDED.time_zone,
    anchor = EXCLUDED.anchor, phase = EXCLUDED.phase, current_task = EXCLUDED.current_task,
    next_due_at = EXCLUDED.next_due_at, occurrences = EXCLUDED.occurrences,
    last_completed_at = EXCLUDED.last_completed_at, generation = EXCLUDED.generation,
    spec = EXCLUDED.spec, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
-- A reconcile of an older generation that finishes late does not undo a newer one (F17).
WHERE recurring_tasks.generation <= EXCLUDED.generation
"""

# A uid never comes back (Kubernetes mints a new one for an object re-created under its name),
# so a deleted row is final: these checks, under a row lock, keep a late write of a deleted
# object from reviving it, and its events from following its deletion (F23).
_TASK_DELETED = "SELECT deleted_at IS NOT NULL FROM tasks WHERE uid = %s FOR UPDATE"
_RECURRING_TASK_DELETED = "SELECT deleted_at IS NOT NULL FROM recurring_tasks WHERE uid = %s FOR UPDATE"
# FOR SHARE: the occurrences of one series may be saved at once; its deletion (an UPDATE) waits for them.
_SERIES_OF_TASK_DELETED = "SELECT deleted_at IS NOT NULL FROM recurring_tasks WHERE uid = %s FOR SHARE"

# A deleted series counts the occurrences recorded for it: the last word is the history. Either
# way the count can be off when the deletion comes between an occurrence and its record: deleted
# between committing its next occurrence and promoting it, the series never counted an occurrence
# whose Task was made and recorded; deleted after promoting it but before its Task's handler ran,
# it counted one whose row is then refused (its series is deleted) and never written. The lock
# taken first (FOR UPDATE, against the FOR SHARE of every occurrence being saved) makes the count
# see every row that will ever be written for the series.
_SERIES_DELETE = """
UPDATE recurring_tasks SET deleted_at = %s,
    occurrences = (SELECT count(DISTINCT occurrence) FROM tasks
                   WHERE tasks.recurring_task_uid = recurring_tasks.uid AND tasks.occurrence IS NOT NULL)
WHERE uid = %s AND deleted_at IS NULL
"""


# A Task's deletion, recorded as a skip when asked and no completion is recorded: the row
# lock of the UPDATE orders it after (or before) a completion being saved, so an occurrence
# is either completed or skipped, never both.
_TASK_DELETE = """
UPDATE tasks SET deleted_at = %(at)s,
    phase = CASE WHEN %(skip)s AND NOT completed THEN 'Skipped' ELSE phase END
WHERE uid = %(uid)s AND deleted_at IS NULL
RETURNING phase = 'Skipped'
"""


def _row_parameters(row: TaskWrite | RecurringTaskWrite) -> dict[str, Any]:
    parameters = dict(vars(row))
    parameters["spec"] = Jsonb(row.spec)
    parameters["status"] = Jsonb(row.status)
    if isinstance(row, TaskWrite):
        parameters["tags"] = list(row.tags)
    return parameters


class Records(Repository):
    """The operator's writes of Tasks and RecurringTasks, each a unit of work with its events."""

    async def save_task(self, row: TaskWrite, *, events: Sequence[Event] = ()) -> datetime | None:
        """Upsert a Task with its events; return the durable completion instant (if completed).

        Raises :class:`RecordDeleted` (and records nothing) for a deleted Task, or an occurrence
        of a deleted series.
        """
        async with self._unit_of_work("save task") as connection:
            if row.recurring_task_uid is not None and await _deleted(
                connection, _SERIES_OF_TASK_DELETED, row.recurring_task_uid
            ):
                raise RecordDeleted(f"the series of task {row.uid} is deleted", series=True)
            if await _deleted(connection, _TASK_DELETED, row.uid):
                raise RecordDeleted(f"task {row.uid} is deleted", series=False)
            cursor = await connection.execute(_TASK_UPSERT, _row_parameters(row))
            stored = await cursor.fetchone()
            await self._append_events(connection, events)
        completed_at: datetime | None = stored[0] if stored else None
        return completed_at

    async def save_recurring_task(self, row: RecurringTaskWrite, *, events: Sequence[Event] = ()) -> None:
        """Upsert a RecurringTask with its events; :class:`RecordDeleted` (nothing recorded) once deleted."""
        async with self._unit_of_work("save recurring task") as connection:
            if await _deleted(connection, _RECURRING_TASK_DELETED, row.uid):
                raise RecordDeleted(f"recurring task {row.uid} is deleted", series=True)
            await connection.execute(_RECURRING_TASK_UPSERT, _row_parameters(row))
            await self._append_events(connection, events)

    async def completion_instant(self, *, task_uid: str) -> datetime:
        """When the task was completed, as first recorded (the schedule advances from it)."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT completed_at FROM tasks WHERE uid = %s AND completed", (task_uid,)
            )
            found = await cursor.fetchone()
        if found is None or found[0] is None:
            raise RecordNotFound(f"the completion of task {task_uid} is not recorded yet")
        instant: datetime = found[0]
        return instant

    async def mark_task_deleted(
        self, *, uid: str, at: datetime, skip: bool, deleted: Event, skipped: Event
    ) -> bool:
        """Mark a Task's live row deleted, with ``deleted``; True if it was recorded as a skip.

        With ``skip`` (it was its series' current occurrence), a row with no completion
        recorded becomes history in phase ``Skipped`` and ``skipped`` is recorded before
        ``deleted``. A row that is not there or already deleted: nothing, and False.
        """
        async with self._unit_of_work("delete task") as connection:
            cursor = await connection.execute(_TASK_DELETE, {"at": at, "uid": uid, "skip": skip})
            found = await cursor.fetchone()
            if found is None:
                return False
            was_skipped = bool(found[0])
            await self._append_events(connection, [skipped, deleted] if was_skipped else [deleted])
            return was_skipped

    async def mark_deleted(self, *, table: str, uid: str, at: datetime, events: Sequence[Event] = ()) -> None:
        """Mark a live row deleted, with its events; a row that is not there or already deleted: nothing.

        The events go with the row: an object never recorded (created and deleted before its
        handler ran, or refused as an occurrence of a deleted series) has no ``deleted`` event
        for consumers that never heard of it.
        """
        if table not in {"tasks", "recurring_tasks", "reminders"}:
            raise ValueError(f"unknown table {table!r}")
        async with self._unit_of_work(f"delete from {table}") as connection:
            # The table name is one of three constants checked above, never user text.
            statement = f"UPDATE {table} SET deleted_at = %s WHERE uid = %s AND deleted_at IS NULL"
            if table == "recurring_tasks":
                # Lock first: the recount's statement then starts after every occurrence being
                # saved (FOR SHARE) has committed, and its snapshot sees them.
                await connection.execute("SELECT 1 FROM recurring_tasks WHERE uid = %s FOR UPDATE", (uid,))
                statement = _SERIES_DELETE
            cursor = await connection.execute(statement, (at, uid))
            if cursor.rowcount:
                await self._append_events(connection, events)
