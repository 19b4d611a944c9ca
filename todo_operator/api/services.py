"""What the routes do, without HTTP: one class per resource, over the API server and PostgreSQL.

Consistency, as a user sees it:

* a write (create, patch, complete, delete) goes to the API server and
  returns the object as the API server stored it, with its ETag;
* ``GET`` of one object by name reads the API server too, so a read right
  after a write sees it (read-your-writes); only history — a completed
  occurrence the cluster pruned — comes from PostgreSQL (``live: false``);
* lists, filters, search and the activity feed read PostgreSQL, which the
  operator updates a few milliseconds after each change: a list right after
  a write may not show it yet (eventual consistency; poll or GET by name).

Ownership is checked on every object, on ``spec.owner`` (for Reminders: the
owner of their task); another user's object answers 404, exactly as a name
that does not exist.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from pydantic import ValidationError

from todo_operator import kube
from todo_operator.api import cursors, names, preconditions, problems
from todo_operator.api import models as m
from todo_operator.api.auth import User
from todo_operator.api.settings import ApiSettings
from todo_operator.clock import Clock
from todo_operator.domain import crds, occurrences, recurrence, resources
from todo_operator.kube import owners
from todo_operator.schedule_engine import ScheduleEngine
from todo_operator.store import queries

logger = logging.getLogger(__name__)

Body = dict[str, Any]
LABEL_CREATED_BY = "todo.dev/created-by"


@dataclass(frozen=True, kw_only=True)
class Stored:
    """An answer and the ETag to send with it (None for history rows)."""

    value: Any
    etag: str | None


@contextlib.contextmanager
def domain_validation(*, prefix: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn a domain model's ValidationError into a 422 problem naming the fields."""
    try:
        yield
    except ValidationError as error:
        raise problems.from_validation_errors(error.errors(include_url=False), prefix=prefix) from None


def _not_found(what: str, name: str) -> problems.Problem:
    return problems.Problem(404, f"you have no {what} named {name!r}", kind="not-found")


def _owner_of(kind: crds.Kind, body: Body) -> str | None:
    spec = body.get("spec") or {}
    if kind is crds.RECURRING_TASK:
        owner = (spec.get("taskTemplate") or {}).get("owner")
    else:
        owner = spec.get("owner")
    return owner if isinstance(owner, str) else None


def _rv(body: Body) -> str:
    return str(body["metadata"]["resourceVersion"])


def _version(body: Body) -> str:
    """What an ETag names: the object (uid) at one generation of its spec.

    Not the resourceVersion: the operator writes status all the time, and a
    client's If-Match must not fail because of writes it cannot see or make.
    """
    meta = body["metadata"]
    return f"{meta['uid']}.{meta.get('generation', 1)}"


_PATCH_ATTEMPTS = 3


class Objects:
    """Shared plumbing: find the caller's live object, write with preconditions."""

    def __init__(self, *, kube: kube.Kube, settings: ApiSettings) -> None:
        self.kube = kube
        self.namespace = settings.namespace

    async def owned(self, kind: crds.Kind, *, user: User, public: str, what: str) -> Body:
        for name in names.candidates(owner=user.id, public=public):
            body = await self.kube.get(kind, namespace=self.namespace, name=name)
            # A terminating object (finalizers pending) is gone as far as users are concerned.
            if body is None or body["metadata"].get("deletionTimestamp"):
                continue
            if _owner_of(kind, body) == user.id:
                return body
        raise _not_found(what, public)

    async def create(self, kind: crds.Kind, *, user: User, public: str | None, spec: Body, what: str) -> Body:
        metadata: Body = {"namespace": self.namespace, "labels": {LABEL_CREATED_BY: "api"}}
        if public is None:
            metadata["generateName"] = names.owner_prefix(user.id) + kind.kind.lower() + "-"
        else:
            metadata["name"] = names.object_name(owner=user.id, public=public)
        manifest = {
            "apiVersion": resources.API_VERSION,
            "kind": kind.kind,
            "metadata": metadata,
            "spec": spec,
        }
        try:
            return await self.kube.create(kind, manifest)
        except kube.AlreadyExists:
            # Names carry the caller's prefix: only the caller's own object can be in the way.
            raise problems.Problem(
                409, f"you already have a {what} named {public!r}", kind="conflict"
            ) from None

    async def patch(self, kind: crds.Kind, *, live: Body, spec: Body, if_match: str | None) -> Body:
        name = live["metadata"]["name"]
        for _ in range(_PATCH_ATTEMPTS):
            checked = preconditions.required_version(if_match, current=_version(live))
            try:
                # With If-Match the write carries the resourceVersion just read, so the API
                # server refuses it (409) if anything changed in between ...
                return await self.kube.patch_spec(
                    kind,
                    namespace=self.namespace,
                    name=name,
                    spec=spec,
                    resource_version=_rv(live) if checked is not None else None,
                )
            except kube.Conflict:
                # ... and if that was only the operator's status write, the spec is still the one
                # the client saw: read again, check again, write again.
                found = await self.kube.get(kind, namespace=self.namespace, name=name)
                if found is None:
                    raise _not_found(kind.kind, name) from None
                live = found
            except kube.NotFound:
                raise _not_found(kind.kind, name) from None
        raise preconditions.stale()

    async def delete(self, kind: crds.Kind, *, live: Body, if_match: str | None) -> None:
        # lightkube has no delete preconditions: the check and the delete are two steps here.
        preconditions.required_version(if_match, current=_version(live))
        await self.kube.delete(kind, namespace=self.namespace, name=live["metadata"]["name"])


def _merge(current: Body, changes: Body) -> Body:
    """RFC 7386 for one level: ``None`` removes."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _changes(update: m.Request) -> Body:
    """The fields the client sent, on the wire (camelCase), ``None`` kept as a removal."""
    dumped = update.model_dump(mode="json", by_alias=True)
    fields = type(update).model_fields
    return {
        (fields[field].alias or field): dumped[fields[field].alias or field]
        for field in update.model_fields_set
    }


# ---------------------------------------------------------------------- tasks


def task_from_body(body: Body, *, user: User) -> m.TaskPublic:
    spec = resources.TaskSpec.model_validate(body.get("spec") or {})
    status = body.get("status") or {}
    meta = body["metadata"]
    series = owners.controller_of(body, kind="RecurringTask")
    recurring = status.get("recurringTask") or (series["name"] if series else None)
    return m.TaskPublic(
        name=names.public_name(owner=user.id, name=meta["name"]),
        title=spec.title,
        description=spec.description,
        owner=spec.owner,
        priority=spec.priority,
        tags=list(spec.tags),
        due_at=spec.due_at,
        reminders=[reminder.to_wire() for reminder in spec.reminders],
        completed=spec.completed,
        completed_at=status.get("completedAt"),
        phase="Completed" if spec.completed else status.get("phase") or "Open",
        recurring_task=names.public_name(owner=user.id, name=recurring) if recurring else None,
        occurrence=status.get("occurrence"),
        created_at=meta.get("creationTimestamp"),
        live=True,
        resource_version=_rv(body),
    )


def task_from_record(record: queries.TaskRecord, *, user: User) -> m.TaskPublic:
    return m.TaskPublic(
        name=names.public_name(owner=user.id, name=record.name),
        title=record.title,
        description=record.description,
        owner=record.owner,
        priority=record.priority,  # type: ignore[arg-type]  # the operator stores validated specs only
        tags=record.tags,
        due_at=record.due_at,
        reminders=list(record.spec.get("reminders") or []),
        completed=record.completed,
        completed_at=record.completed_at,
        phase=record.phase,
        recurring_task=(
            names.public_name(owner=user.id, name=record.recurring_task) if record.recurring_task else None
        ),
        occurrence=record.occurrence,
        next_occurrence=record.next_occurrence,
        created_at=record.created_at,
        live=record.live,
    )


@dataclass(frozen=True, kw_only=True)
class TaskListQuery:
    """A list request as the route parsed it (everything but the caller and the clock)."""

    state: queries.TaskState | None = None
    priorities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tags_match: queries.TagsMatch = "all"
    due_before: datetime | None = None
    due_after: datetime | None = None
    recurring: bool | None = None
    text: str | None = None
    sort: queries.SortKey = "created"
    descending: bool = True

    def digest(self) -> str:
        return cursors.query_digest(vars(self))


def parse_sort(text: str) -> tuple[queries.SortKey, bool]:
    """``due`` → ascending by due; ``-priority`` → descending. Raises a 422 problem otherwise."""
    descending = text.startswith("-")
    key = text.removeprefix("-").removeprefix("+")
    allowed: tuple[queries.SortKey, ...] = ("due", "priority", "created", "next", "title")
    for candidate in allowed:
        if key == candidate:
            return candidate, descending
    raise problems.Problem(
        422,
        f"sort must be one of {', '.join(allowed)}, optionally with '-' for descending",
        kind="invalid-input",
        errors=[problems.FieldError(field="sort", message=f"unknown sort key {key!r}")],
    )


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class Pager:
    """Signs and checks cursors for one caller and one query."""

    def __init__(self, *, secret: bytes) -> None:
        self._secret = secret

    def position(self, cursor: str | None, *, user: User, digest: str) -> cursors.Position | None:
        if cursor is None:
            return None
        try:
            return cursors.decode(cursor, secret=self._secret, user=user.id, digest=digest)
        except cursors.InvalidCursor as error:
            raise problems.Problem(
                400,
                str(error),
                kind="invalid-cursor",
                errors=[problems.FieldError(field="cursor", message=str(error))],
            ) from None

    def page[Row](
        self,
        rows: Sequence[Row],
        *,
        limit: int,
        user: User,
        digest: str,
        position_of: Callable[[Row], cursors.Position],
    ) -> tuple[Sequence[Row], str | None]:
        """One page of ``rows`` (fetched ``limit + 1`` to know if more follow) and the next cursor.

        ``position_of`` says where a row stands in the query's order: the cursor holds the last one's.
        """
        page = rows[:limit]
        if len(rows) <= limit:
            return page, None
        return page, cursors.encode(position_of(page[-1]), secret=self._secret, user=user.id, digest=digest)


def _by_name(row: _Named) -> cursors.Position:
    return cursors.Position(value=None, key=row.name)


class Tasks:
    def __init__(
        self, *, objects: Objects, pool: queries.Pool, clock: Clock, pager: Pager, settings: ApiSettings
    ) -> None:
        self._objects = objects
        self._pool = pool
        self._clock = clock
        self._pager = pager
        self._namespace = settings.namespace

    async def list(self, *, user: User, query: TaskListQuery, cursor: str | None, limit: int) -> m.TaskPage:
        digest = query.digest()
        position = self._pager.position(cursor, user=user, digest=digest)
        rows = await queries.list_tasks(
            self._pool,
            queries.TaskQuery(owner=user.id, namespace=self._namespace, now=self._clock.now(), **vars(query)),
            after=None if position is None else queries.After(value=position.value, uid=position.key),
            limit=limit + 1,
        )
        page, next_cursor = self._pager.page(
            rows,
            limit=limit,
            user=user,
            digest=digest,
            position_of=lambda row: cursors.Position(value=row.sort_value, key=row.uid),
        )
        return m.TaskPage(items=[task_from_record(row, user=user) for row in page], next_cursor=next_cursor)

    async def _public(self, body: Body, *, user: User) -> m.TaskPublic:
        """The live object as the API shows it, with ``nextOccurrence`` as the list computes it.

        A one-off task's is its due time while it is open; an occurrence's is its
        series' next due, as the operator recorded it (the object does not carry it).
        """
        value = task_from_body(body, user=user)
        controller = owners.controller_of(body, kind="RecurringTask")
        series = str(controller["uid"]) if controller and controller.get("uid") else None
        if series is None:
            return value.model_copy(update={"next_occurrence": None if value.completed else value.due_at})
        try:
            upcoming = await queries.series_next_due(self._pool, recurring_task_uid=series)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            # The object came from the API server (a write may just have succeeded there): a
            # database outage leaves this one field empty rather than failing the answer.
            logger.warning("nextOccurrence of %s left out: %s", value.name, str(error).splitlines()[0])
            return value
        return value.model_copy(update={"next_occurrence": upcoming})

    async def get(self, *, user: User, name: str) -> Stored:
        with contextlib.suppress(problems.Problem):
            live = await self._objects.owned(crds.TASK, user=user, public=name, what="task")
            return Stored(value=await self._public(live, user=user), etag=preconditions.etag(_version(live)))
        record = await queries.find_history(
            self._pool,
            owner=user.id,
            namespace=self._namespace,
            names=names.candidates(owner=user.id, public=name),
        )
        if record is None:
            raise _not_found("task", name)
        return Stored(value=task_from_record(record, user=user), etag=None)

    async def create(self, *, user: User, body: m.TaskCreate) -> Stored:
        fields = body.model_dump(exclude={"name"})
        with domain_validation():
            spec = resources.TaskSpec(owner=user.id, **fields)
        created = await self._objects.create(
            crds.TASK, user=user, public=body.name, spec=spec.to_wire(), what="task"
        )
        return Stored(
            value=await self._public(created, user=user), etag=preconditions.etag(_version(created))
        )

    async def update(self, *, user: User, name: str, body: m.TaskUpdate, if_match: str | None) -> Stored:
        live = await self._owned_live(user=user, name=name)
        changes = _changes(body)
        with domain_validation():
            resources.TaskSpec.model_validate(_merge(live.get("spec") or {}, changes))
        patched = await self._objects.patch(crds.TASK, live=live, spec=changes, if_match=if_match)
        return Stored(
            value=await self._public(patched, user=user), etag=preconditions.etag(_version(patched))
        )

    async def complete(self, *, user: User, name: str, if_match: str | None) -> Stored:
        return await self.update(user=user, name=name, body=m.TaskUpdate(completed=True), if_match=if_match)

    async def delete(self, *, user: User, name: str, if_match: str | None) -> None:
        live = await self._owned_live(user=user, name=name)
        await self._objects.delete(crds.TASK, live=live, if_match=if_match)

    async def _owned_live(self, *, user: User, name: str) -> Body:
        try:
            return await self._objects.owned(crds.TASK, user=user, public=name, what="task")
        except problems.Problem:
            history = await queries.find_history(
                self._pool,
                owner=user.id,
                namespace=self._namespace,
                names=names.candidates(owner=user.id, public=name),
            )
            if history is not None:
                raise problems.Problem(
                    409,
                    f"task {name!r} is history (its object was pruned): it cannot change",
                    kind="conflict",
                ) from None
            raise


# ---------------------------------------------------------------------- recurring tasks


def recurring_task_from_body(body: Body, *, user: User) -> m.RecurringTaskPublic:
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    meta = body["metadata"]
    template = dict(spec.get("taskTemplate") or {})
    current = status.get("currentTask")
    return m.RecurringTaskPublic(
        name=names.public_name(owner=user.id, name=meta["name"]),
        title=str(template.get("title", "")),
        schedule=dict(spec.get("schedule") or {}),
        anchor=str(spec.get("anchor", "schedule")),
        suspend=bool(spec.get("suspend", False)),
        history_limit=int(spec.get("historyLimit", 5)),
        task_template=template,
        phase=status.get("phase"),
        rule=status.get("rule"),
        current_task=names.public_name(owner=user.id, name=current) if current else None,
        next_due_at=status.get("nextDueAt"),
        occurrences=int(status.get("occurrences") or 0),
        last_completed_at=status.get("lastCompletedAt"),
        created_at=meta.get("creationTimestamp"),
        resource_version=_rv(body),
    )


def recurring_task_from_record(record: queries.RecurringTaskRecord, *, user: User) -> m.RecurringTaskPublic:
    spec = record.spec
    return m.RecurringTaskPublic(
        name=names.public_name(owner=user.id, name=record.name),
        title=record.title,
        schedule=dict(spec.get("schedule") or {}),
        anchor=record.anchor,
        suspend=bool(spec.get("suspend", False)),
        history_limit=int(spec.get("historyLimit", 5)),
        task_template=dict(spec.get("taskTemplate") or {}),
        phase=record.phase,
        rule=record.rule,
        current_task=names.public_name(owner=user.id, name=record.current_task)
        if record.current_task
        else None,
        next_due_at=record.next_due_at,
        occurrences=record.occurrences,
        last_completed_at=record.last_completed_at,
        created_at=record.created_at,
    )


async def compile_schedule(
    engine: ScheduleEngine, schedule: resources.Schedule, *, user: User
) -> recurrence.Recurrence:
    """Compiled in the engine's threads, as one of the user's jobs there; a refused rule is a 422.

    A rule whose checks cost more than the compile budget is refused like any
    other invalid schedule (``recurrence.ScheduleTooCostly``).
    """
    try:
        return await engine.compile(occurrences.schedule_spec(schedule), owner=user.id)
    # ValueError: the schema's date-time pattern lets impossible dates and offsets through
    # ("2026-13-45T99:99", "-47:13"); fromisoformat then refuses them.
    except (recurrence.ScheduleError, ValueError) as error:
        raise problems.Problem(
            422,
            str(error),
            kind="invalid-schedule",
            errors=[problems.FieldError(field="schedule", message=str(error))],
        ) from None


async def list_upcoming(
    engine: ScheduleEngine,
    schedule: recurrence.Recurrence,
    *,
    user: User,
    after: datetime,
    count: int,
    inclusive: bool,
    field: str,
) -> list[datetime]:
    """The next ``count`` occurrences, listed in the engine's threads under the compile budget.

    Too many far-apart occurrences to list within it is a 422 on ``field``, the
    parameter that asked for them.
    """
    try:
        return await engine.run(
            lambda: schedule.upcoming(after, count=count, inclusive=inclusive), owner=user.id
        )
    except recurrence.ScheduleTooCostly as error:
        raise problems.Problem(
            422,
            str(error),
            kind="invalid-schedule",
            errors=[problems.FieldError(field=field, message=str(error))],
        ) from None


class RecurringTasks:
    def __init__(
        self,
        *,
        objects: Objects,
        pool: queries.Pool,
        clock: Clock,
        pager: Pager,
        settings: ApiSettings,
        engine: ScheduleEngine,
    ) -> None:
        self._objects = objects
        self._pool = pool
        self._clock = clock
        self._pager = pager
        self._settings = settings
        self._engine = engine

    async def list(self, *, user: User, cursor: str | None, limit: int) -> m.RecurringTaskPage:
        digest = cursors.query_digest("recurring-tasks")
        position = self._pager.position(cursor, user=user, digest=digest)
        rows = await queries.list_recurring_tasks(
            self._pool,
            owner=user.id,
            namespace=self._settings.namespace,
            after_name=None if position is None else position.key,
            limit=limit + 1,
        )
        page, next_cursor = self._pager.page(
            rows, limit=limit, user=user, digest=digest, position_of=_by_name
        )
        return m.RecurringTaskPage(
            items=[recurring_task_from_record(row, user=user) for row in page], next_cursor=next_cursor
        )

    async def get(self, *, user: User, name: str) -> Stored:
        live = await self._objects.owned(crds.RECURRING_TASK, user=user, public=name, what="recurring task")
        return Stored(
            value=recurring_task_from_body(live, user=user), etag=preconditions.etag(_version(live))
        )

    async def _spec(self, *, user: User, fields: Body) -> resources.RecurringTaskSpec:
        template = dict(fields.pop("task_template") or {})
        with domain_validation():
            spec = resources.RecurringTaskSpec(
                task_template=resources.TaskTemplate(owner=user.id, **template), **fields
            )
        # What the operator would refuse later, refused now.
        await compile_schedule(self._engine, spec.schedule, user=user)
        return spec

    async def create(self, *, user: User, body: m.RecurringTaskCreate) -> Stored:
        spec = await self._spec(user=user, fields=body.model_dump(exclude={"name"}))
        created = await self._objects.create(
            crds.RECURRING_TASK, user=user, public=body.name, spec=spec.to_wire(), what="recurring task"
        )
        return Stored(
            value=recurring_task_from_body(created, user=user), etag=preconditions.etag(_version(created))
        )

    async def update(
        self, *, user: User, name: str, body: m.RecurringTaskUpdate, if_match: str | None
    ) -> Stored:
        live = await self._objects.owned(crds.RECURRING_TASK, user=user, public=name, what="recurring task")
        changes = _changes(body)
        if "taskTemplate" in changes:
            if changes["taskTemplate"] is None:
                raise problems.Problem(
                    422,
                    "taskTemplate cannot be removed",
                    errors=[problems.FieldError(field="taskTemplate", message="cannot be removed")],
                )
            changes["taskTemplate"] = {**changes["taskTemplate"], "owner": user.id}
        merged = _merge(live.get("spec") or {}, changes)
        with domain_validation():
            spec = resources.RecurringTaskSpec.model_validate(merged)
        await compile_schedule(self._engine, spec.schedule, user=user)
        if "schedule" in changes and changes["schedule"] is not None:
            # A merge patch would keep old schedule fields (every + a new rrule): replace it whole.
            changes["schedule"] = _with_removals(live["spec"].get("schedule") or {}, changes["schedule"])
        patched = await self._objects.patch(crds.RECURRING_TASK, live=live, spec=changes, if_match=if_match)
        return Stored(
            value=recurring_task_from_body(patched, user=user), etag=preconditions.etag(_version(patched))
        )

    async def set_suspended(self, *, user: User, name: str, suspend: bool, if_match: str | None) -> Stored:
        return await self.update(
            user=user, name=name, body=m.RecurringTaskUpdate(suspend=suspend), if_match=if_match
        )

    async def delete(self, *, user: User, name: str, if_match: str | None) -> None:
        live = await self._objects.owned(crds.RECURRING_TASK, user=user, public=name, what="recurring task")
        await self._objects.delete(crds.RECURRING_TASK, live=live, if_match=if_match)

    async def occurrences(self, *, user: User, name: str, count: int) -> m.Occurrences:
        live = await self._objects.owned(crds.RECURRING_TASK, user=user, public=name, what="recurring task")
        rows = await queries.list_tasks(
            self._pool,
            queries.TaskQuery(
                owner=user.id,
                namespace=self._settings.namespace,
                now=self._clock.now(),
                recurring_task_uid=str(live["metadata"]["uid"]),
                sort="due",
                descending=False,
            ),
            after=None,
            limit=self._settings.max_page_size,
        )
        past = [
            m.Occurrence(
                name=names.public_name(owner=user.id, name=row.name),
                occurrence=row.occurrence,
                due_at=row.due_at,
                completed=row.completed,
                completed_at=row.completed_at,
                live=row.live,
            )
            for row in rows
        ]
        spec = resources.RecurringTaskSpec.model_validate(live.get("spec") or {})
        schedule = await compile_schedule(self._engine, spec.schedule, user=user)
        status = live.get("status") or {}
        next_due = status.get("nextDueAt")
        if status.get("phase") == "Ended":
            coming: list[datetime] = []
        else:
            after, inclusive = (
                (datetime.fromisoformat(next_due), False) if next_due else (self._clock.now(), True)
            )
            coming = await list_upcoming(
                self._engine,
                schedule,
                user=user,
                after=after,
                count=count,
                inclusive=inclusive,
                field="upcoming",
            )
        return m.Occurrences(past=past, upcoming=coming)

    async def preview(self, body: m.SchedulePreview, *, user: User) -> m.SchedulePreviewResult:
        if body.count > self._settings.preview_max_occurrences:
            raise problems.Problem(
                422,
                f"count must be at most {self._settings.preview_max_occurrences}",
                errors=[problems.FieldError(field="count", message="too many occurrences asked")],
            )
        schedule = await compile_schedule(self._engine, body.schedule, user=user)
        after = body.after or self._clock.now()
        found = await list_upcoming(
            self._engine,
            schedule,
            user=user,
            after=after,
            count=body.count,
            inclusive=body.after is None,
            field="count",
        )
        return m.SchedulePreviewResult(
            rule=schedule.rule_text, time_zone=body.schedule.time_zone, occurrences=found
        )


def _with_removals(old: Body, new: Body) -> Body:
    """A merge patch that makes ``old`` become ``new``: keys of ``old`` missing in ``new`` set to None."""
    return {**{key: None for key in old if key not in new}, **new}


# ---------------------------------------------------------------------- reminders


def reminder_from_body(body: Body, *, user: User) -> m.ReminderPublic:
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return m.ReminderPublic(
        name=names.public_name(owner=user.id, name=body["metadata"]["name"]),
        task=names.public_name(owner=user.id, name=str((spec.get("taskRef") or {}).get("name", ""))),
        before=spec.get("before"),
        at=spec.get("at"),
        message=str(spec.get("message", "")),
        phase=status.get("phase"),
        fire_at=status.get("fireAt"),
        sent_at=status.get("sentAt"),
        attempts=int(status.get("attempts") or 0),
        last_error=status.get("lastError"),
    )


def reminder_from_record(record: queries.ReminderRecord, *, user: User) -> m.ReminderPublic:
    spec = record.spec
    return m.ReminderPublic(
        name=names.public_name(owner=user.id, name=record.name),
        task=names.public_name(owner=user.id, name=record.task_name),
        before=spec.get("before"),
        at=spec.get("at"),
        message=str(spec.get("message", "")),
        phase=record.phase,
        fire_at=record.fire_at,
        sent_at=record.sent_at,
        attempts=record.attempts,
        last_error=record.last_error,
    )


class Reminders:
    def __init__(self, *, objects: Objects, pool: queries.Pool, pager: Pager, settings: ApiSettings) -> None:
        self._objects = objects
        self._pool = pool
        self._pager = pager
        self._namespace = settings.namespace

    async def list(self, *, user: User, cursor: str | None, limit: int) -> m.ReminderPage:
        digest = cursors.query_digest("reminders")
        position = self._pager.position(cursor, user=user, digest=digest)
        rows = await queries.list_reminders(
            self._pool,
            owner=user.id,
            namespace=self._namespace,
            after_name=None if position is None else position.key,
            limit=limit + 1,
        )
        page, next_cursor = self._pager.page(
            rows, limit=limit, user=user, digest=digest, position_of=_by_name
        )
        return m.ReminderPage(
            items=[reminder_from_record(row, user=user) for row in page], next_cursor=next_cursor
        )

    async def create(self, *, user: User, body: m.ReminderCreate) -> Stored:
        task = await self._objects.owned(crds.TASK, user=user, public=body.task, what="task")
        with domain_validation():
            spec = resources.ReminderSpec(
                task_ref=resources.TaskRef(name=task["metadata"]["name"]),
                before=body.before,
                at=body.at,
                message=body.message,
            )
        if spec.before is not None and not (task.get("spec") or {}).get("dueAt"):
            message = "the task has no dueAt to count back from"
            raise problems.Problem(
                422, f"before: {message}", errors=[problems.FieldError(field="before", message=message)]
            )
        created = await self._objects.create(
            crds.REMINDER, user=user, public=body.name, spec=spec.to_wire(), what="reminder"
        )
        return Stored(
            value=reminder_from_body(created, user=user), etag=preconditions.etag(_version(created))
        )

    async def delete(self, *, user: User, name: str) -> None:
        for candidate in names.candidates(owner=user.id, public=name):
            body = await self._objects.kube.get(crds.REMINDER, namespace=self._namespace, name=candidate)
            if body is not None and await self._owner(body) == user.id:
                await self._objects.kube.delete(crds.REMINDER, namespace=self._namespace, name=candidate)
                return
        raise _not_found("reminder", name)

    async def _owner(self, body: Body) -> str | None:
        """Whose reminder it is: as the operator recorded it, from the task it was made for.

        Ownership follows uids, not names (F25): the row was recorded from the
        Task of that uid, and stays so when that Task is deleted and another is
        made under its name for someone else. Only a reminder not yet recorded
        (a moment after it is made) is judged by the task its ``taskRef`` names now.
        """
        recorded = await queries.reminder_owner(
            self._pool, namespace=self._namespace, name=str(body["metadata"]["name"])
        )
        if recorded is not None:
            return recorded
        task_name = ((body.get("spec") or {}).get("taskRef") or {}).get("name")
        if isinstance(task_name, str):
            task = await self._objects.kube.get(crds.TASK, namespace=self._namespace, name=task_name)
            if task is not None:
                return _owner_of(crds.TASK, task)
        return None


# ---------------------------------------------------------------------- activity


class Activity:
    def __init__(self, *, pool: queries.Pool, pager: Pager, settings: ApiSettings) -> None:
        self._pool = pool
        self._pager = pager
        self._namespace = settings.namespace

    async def list(self, *, user: User, cursor: str | None, limit: int) -> m.ActivityPage:
        digest = cursors.query_digest("activity")
        position = self._pager.position(cursor, user=user, digest=digest)
        before = None
        if position is not None:
            if not position.key.isdigit() or len(position.key) > 18:
                raise problems.Problem(400, "the cursor is malformed", kind="invalid-cursor")
            before = int(position.key)
        rows = await queries.list_activity(
            self._pool, owner=user.id, namespace=self._namespace, before_id=before, limit=limit + 1
        )
        page, next_cursor = self._pager.page(
            rows,
            limit=limit,
            user=user,
            digest=digest,
            position_of=lambda row: cursors.Position(value=None, key=str(row.id)),
        )
        items = [
            m.ActivityItem(
                id=row.id,
                type=row.event_type,
                subject=names.public_name(owner=user.id, name=row.subject.split("/", 1)[-1]),
                summary=row.summary,
                occurred_at=row.occurred_at,
            )
            for row in page
        ]
        return m.ActivityPage(items=items, next_cursor=next_cursor)
