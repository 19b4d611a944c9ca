"""The REST shim's reads: filtered, sorted, searched, paged — one owner's rows at a time.

PostgreSQL is where lists come from (the API server cannot filter by due
date, search text or sort), and where history lives: completed occurrences
that a RecurringTask's ``historyLimit`` pruned from the cluster are still
rows here. Every query is scoped by ``owner`` and ``namespace`` in its
``WHERE`` clause — there is no query in this module that can return another
user's row — and pages by keyset (sort value, uid), never by offset, so a
page neither skips nor repeats rows while the operator writes.

Statements are composed from constants with :mod:`psycopg.sql`; user input
only ever travels as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import sql
from psycopg.rows import class_row

from todo_operator.store.repository import Repository

TaskState = Literal["todo", "open", "overdue", "completed", "skipped"]
SortKey = Literal["due", "priority", "created", "next", "title"]
TagsMatch = Literal["all", "any"]

# History: an occurrence of a recurring task once completed or skipped. It outlives its
# object (pruned by ``historyLimit``, or deleted to skip it).
_HISTORY = "({t}.recurring_task_uid IS NOT NULL AND ({t}.completed OR {t}.phase = 'Skipped'))"
# A task is visible while it exists, and forever once it is history.
_VISIBLE = f"(t.deleted_at IS NULL OR {_HISTORY.format(t='t')})"

# When the task (or its series) comes up next: the seed's next_occurrence if
# the operator recorded one; for an occurrence, its series' next due; for a
# one-off task, its due time while it is open.
_NEXT = (
    "COALESCE(t.next_occurrence, CASE WHEN t.recurring_task_uid IS NOT NULL THEN r.next_due_at"
    " WHEN NOT t.completed THEN t.due_at END)"
)
# One user's view shows each name once, as the API's GET resolves it (names.candidates):
# a live object before history, and of two alike the API-made ``<prefix><name>`` before
# the kubectl-made ``<name>``. A row that such a twin outranks is left out of lists.
_TASK_NOT_OUTRANKED = f"""NOT EXISTS (
  SELECT 1 FROM tasks twin WHERE twin.owner = t.owner AND twin.namespace = t.namespace AND (
    (twin.name = %(owner_prefix)s || t.name AND (twin.deleted_at IS NULL
      OR (t.deleted_at IS NOT NULL AND {_HISTORY.format(t="twin")})))
    OR (t.name = %(owner_prefix)s || twin.name AND twin.deleted_at IS NULL AND t.deleted_at IS NOT NULL)))"""
# Lists of live rows only: a kubectl-made row is left out while its API-made twin lives.
_LIVE_NOT_OUTRANKED = (
    "NOT EXISTS (SELECT 1 FROM {table} twin WHERE twin.owner = x.owner AND twin.namespace = x.namespace"
    " AND twin.deleted_at IS NULL AND twin.name = %(owner_prefix)s || x.name)"
)
_PRIORITY_RANK = "CASE t.priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END"


@dataclass(frozen=True, kw_only=True)
class _Sort:
    expression: str  # without the NULL sentinel
    sql_type: str
    nullable: bool


_SORTS: dict[SortKey, _Sort] = {
    "due": _Sort(expression="t.due_at", sql_type="timestamptz", nullable=True),
    "next": _Sort(expression=_NEXT, sql_type="timestamptz", nullable=True),
    "priority": _Sort(expression=_PRIORITY_RANK, sql_type="integer", nullable=False),
    "created": _Sort(expression="t.created_at", sql_type="timestamptz", nullable=False),
    "title": _Sort(expression="t.title", sql_type="text", nullable=False),
}


def sort_expression(key: SortKey, *, descending: bool) -> str:
    """The ORDER BY expression; undated rows sort last in either direction."""
    sort = _SORTS[key]
    if not sort.nullable:
        return sort.expression
    sentinel = "'-infinity'" if descending else "'infinity'"
    return f"COALESCE({sort.expression}, {sentinel}::timestamptz)"


@dataclass(frozen=True, kw_only=True)
class TaskQuery:
    owner: str
    namespace: str
    now: datetime
    state: TaskState | None = None
    priorities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tags_match: TagsMatch = "all"
    due_before: datetime | None = None
    due_after: datetime | None = None
    recurring: bool | None = None
    text: str | None = None
    recurring_task_uid: str | None = None
    # The owner's API name prefix: when set, rows another of theirs outranks by name are left out.
    owner_prefix: str | None = None
    sort: SortKey = "created"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.owner_prefix == "":
            raise ValueError("owner_prefix must not be empty")  # every row would be its own twin


@dataclass(frozen=True, kw_only=True)
class After:
    """The keyset position a page starts after."""

    value: str | None
    uid: str


@dataclass(frozen=True, kw_only=True)
class TaskRead:
    """A Task as the API's lists read it (live or history)."""

    uid: str
    name: str
    owner: str
    title: str
    description: str
    priority: str
    tags: list[str]
    due_at: datetime | None
    completed: bool
    completed_at: datetime | None
    phase: str
    occurrence: int | None
    recurring_task: str | None
    recurring_rule: str | None
    next_occurrence: datetime | None
    spec: dict[str, Any]
    created_at: datetime
    live: bool
    sort_value: str | None


_TASK_COLUMNS = f"""
t.uid::text AS uid, t.name, t.owner, t.title, t.description, t.priority, t.tags, t.due_at, t.completed,
t.completed_at, t.phase, t.occurrence, r.name AS recurring_task, r.rule AS recurring_rule,
{_NEXT} AS next_occurrence, t.spec, t.created_at, t.deleted_at IS NULL AS live
"""


def _task_conditions(query: TaskQuery) -> tuple[list[str], dict[str, Any]]:
    conditions = ["t.owner = %(owner)s", "t.namespace = %(namespace)s", _VISIBLE]
    params: dict[str, Any] = {"owner": query.owner, "namespace": query.namespace, "now": query.now}
    if query.state == "completed":
        conditions.append("t.completed")
    elif query.state == "skipped":
        conditions.append("t.phase = 'Skipped'")
    elif query.state == "overdue":
        conditions.append("t.deleted_at IS NULL AND NOT t.completed AND t.due_at < %(now)s")
    elif query.state == "todo":  # open or overdue: what is left to do
        conditions.append("t.deleted_at IS NULL AND NOT t.completed")
    elif query.state == "open":
        conditions.append(
            "t.deleted_at IS NULL AND NOT t.completed AND (t.due_at IS NULL OR t.due_at >= %(now)s)"
        )
    if query.priorities:
        conditions.append("t.priority = ANY(%(priorities)s)")
        params["priorities"] = list(query.priorities)
    if query.tags:
        conditions.append("t.tags @> %(tags)s" if query.tags_match == "all" else "t.tags && %(tags)s")
        params["tags"] = list(query.tags)
    if query.due_before is not None:
        conditions.append("t.due_at < %(due_before)s")
        params["due_before"] = query.due_before
    if query.due_after is not None:
        conditions.append("t.due_at >= %(due_after)s")
        params["due_after"] = query.due_after
    if query.recurring is not None:
        conditions.append(
            "t.recurring_task_uid IS NOT NULL" if query.recurring else "t.recurring_task_uid IS NULL"
        )
    if query.text:
        conditions.append(
            "(t.search @@ websearch_to_tsquery('english', %(text)s)"
            " OR r.search @@ websearch_to_tsquery('english', %(text)s))"
        )
        params["text"] = query.text
    if query.recurring_task_uid is not None:
        conditions.append("t.recurring_task_uid = %(recurring_task_uid)s")
        params["recurring_task_uid"] = query.recurring_task_uid
    if query.owner_prefix is not None:
        conditions.append(_TASK_NOT_OUTRANKED)
        params["owner_prefix"] = query.owner_prefix
    return conditions, params


@dataclass(frozen=True, kw_only=True)
class RecurringTaskRead:
    """A RecurringTask as the API's lists read it."""

    uid: str
    name: str
    title: str
    rule: str | None
    time_zone: str
    anchor: str
    phase: str
    current_task: str | None
    next_due_at: datetime | None
    occurrences: int
    last_completed_at: datetime | None
    spec: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ReminderRead:
    """A Reminder as the API's lists read it."""

    name: str
    task_name: str
    recipient: str | None
    fire_at: datetime | None
    phase: str
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    spec: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ActivityRead:
    id: int
    event_type: str
    subject: str
    summary: str
    occurred_at: datetime


class Queries(Repository):
    """The REST shim's reads, one owner's rows at a time."""

    async def list_tasks(self, query: TaskQuery, *, after: After | None, limit: int) -> list[TaskRead]:
        """One page of the owner's tasks (``limit`` rows), after ``after`` in the query's order."""
        conditions, params = _task_conditions(query)
        order = sort_expression(query.sort, descending=query.descending)
        direction = "DESC" if query.descending else "ASC"
        if after is not None:
            comparison = "<" if query.descending else ">"
            sql_type = _SORTS[query.sort].sql_type
            after_key = f"(CAST(%(after_value)s AS {sql_type}), CAST(%(after_uid)s AS uuid))"
            conditions.append(f"({order}, t.uid) {comparison} {after_key}")
            params["after_value"] = after.value
            params["after_uid"] = after.uid
        params["limit"] = limit
        statement = (
            f"SELECT {_TASK_COLUMNS}, ({order})::text AS sort_value"
            " FROM tasks t LEFT JOIN recurring_tasks r ON r.uid = t.recurring_task_uid"
            f" WHERE {' AND '.join(conditions)}"
            f" ORDER BY {order} {direction}, t.uid {direction} LIMIT %(limit)s"
        )
        async with (
            self._connection() as connection,
            connection.cursor(row_factory=class_row(TaskRead)) as cursor,
        ):
            await cursor.execute(sql.SQL(statement), params)
            return await cursor.fetchall()

    async def find_history(self, *, owner: str, namespace: str, names: tuple[str, ...]) -> TaskRead | None:
        """The owner's history by name (an occurrence completed or skipped; the newest if several).

        Only history: a live task is read from the API server, and a row whose
        object is gone but whose deletion the operator has not recorded yet is
        not shown as if it still existed.
        """
        statement = (
            f"SELECT {_TASK_COLUMNS}, NULL::text AS sort_value"
            " FROM tasks t LEFT JOIN recurring_tasks r ON r.uid = t.recurring_task_uid"
            " WHERE t.owner = %(owner)s AND t.namespace = %(namespace)s AND t.name = ANY(%(names)s)"
            f" AND t.deleted_at IS NOT NULL AND {_HISTORY.format(t='t')}"
            " ORDER BY t.deleted_at DESC LIMIT 1"
        )
        params = {"owner": owner, "namespace": namespace, "names": list(names)}
        async with (
            self._connection() as connection,
            connection.cursor(row_factory=class_row(TaskRead)) as cursor,
        ):
            await cursor.execute(sql.SQL(statement), params)
            return await cursor.fetchone()

    async def _owned_by_name[R](
        self,
        record: type[R],
        *,
        table: str,
        columns: str,
        owner: str,
        owner_prefix: str,
        namespace: str,
        after_name: str | None,
        limit: int,
    ) -> list[R]:
        """A page of the owner's live rows of ``table``, by name after ``after_name``."""
        if not owner_prefix:
            # With no prefix every row would be its own twin, and the list empty.
            raise ValueError("owner_prefix must not be empty")
        statement = sql.SQL(
            "SELECT {columns} FROM {table} x"
            " WHERE x.owner = %(owner)s AND x.namespace = %(namespace)s AND x.deleted_at IS NULL"
            " AND (%(after)s::text IS NULL OR x.name > %(after)s) AND {not_outranked}"
            " ORDER BY x.name LIMIT %(limit)s"
        ).format(
            columns=sql.SQL(columns),
            table=sql.Identifier(table),
            not_outranked=sql.SQL(_LIVE_NOT_OUTRANKED).format(table=sql.Identifier(table)),
        )
        params = {
            "owner": owner,
            "owner_prefix": owner_prefix,
            "namespace": namespace,
            "after": after_name,
            "limit": limit,
        }
        async with (
            self._connection() as connection,
            connection.cursor(row_factory=class_row(record)) as cursor,
        ):
            await cursor.execute(statement, params)
            return await cursor.fetchall()

    async def list_recurring_tasks(
        self, *, owner: str, owner_prefix: str, namespace: str, after_name: str | None, limit: int
    ) -> list[RecurringTaskRead]:
        return await self._owned_by_name(
            RecurringTaskRead,
            table="recurring_tasks",
            columns="uid::text AS uid, name, title, rule, time_zone, anchor, phase, current_task,"
            " next_due_at,"
            " occurrences, last_completed_at, spec, created_at",
            owner=owner,
            owner_prefix=owner_prefix,
            namespace=namespace,
            after_name=after_name,
            limit=limit,
        )

    async def list_reminders(
        self, *, owner: str, owner_prefix: str, namespace: str, after_name: str | None, limit: int
    ) -> list[ReminderRead]:
        return await self._owned_by_name(
            ReminderRead,
            table="reminders",
            columns="name, task_name, recipient, fire_at, phase, attempts, sent_at, last_error,"
            " spec, created_at",
            owner=owner,
            owner_prefix=owner_prefix,
            namespace=namespace,
            after_name=after_name,
            limit=limit,
        )

    async def reminder_owner(self, *, namespace: str, name: str) -> str | None:
        """Who owns a live reminder, as the operator recorded it."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT owner FROM reminders WHERE namespace = %s AND name = %s AND deleted_at IS NULL",
                (namespace, name),
            )
            found = await cursor.fetchone()
        return str(found[0]) if found else None

    async def series_next_due(self, *, recurring_task_uid: str) -> datetime | None:
        """When a series' next occurrence is due, as the operator recorded it (the list's ``next``)."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT next_due_at FROM recurring_tasks WHERE uid = %s::uuid",
                (recurring_task_uid,),
            )
            found = await cursor.fetchone()
        return found[0] if found else None

    async def list_activity(
        self, *, owner: str, namespace: str, before_id: int | None, limit: int
    ) -> list[ActivityRead]:
        """The owner's feed in this namespace, newest first (events' subjects are ``namespace/name``)."""
        statement = (
            "SELECT id, event_type, subject, summary, occurred_at FROM activity"
            " WHERE owner = %(owner)s AND starts_with(subject, %(prefix)s)"
            " AND (%(before)s::bigint IS NULL OR id < %(before)s) ORDER BY id DESC LIMIT %(limit)s"
        )
        params = {"owner": owner, "prefix": f"{namespace}/", "before": before_id, "limit": limit}
        async with (
            self._connection() as connection,
            connection.cursor(row_factory=class_row(ActivityRead)) as cursor,
        ):
            await cursor.execute(statement, params)
            return await cursor.fetchall()

    async def ping(self) -> None:
        async with self._connection() as connection:
            await connection.execute("SELECT 1")
