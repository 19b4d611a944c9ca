"""Tasks: one-off tasks and the occurrences of recurring ones; history from PostgreSQL."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

from todo_operator.api import cursors, errors, names, preconditions
from todo_operator.api import models as m
from todo_operator.api.auth import User
from todo_operator.api.services.common import (
    Body,
    Objects,
    Pager,
    Stored,
    changes_of,
    domain_validation,
    merge,
    rv,
    version,
)
from todo_operator.api.settings import ApiSettings
from todo_operator.clock import Clock
from todo_operator.domain import crds, resources, tasks
from todo_operator.kube import owners
from todo_operator.store import queries

logger = logging.getLogger(__name__)


def task_from_body(body: Body, *, user: User, now: datetime) -> m.TaskPublic:
    """The live object as the API shows it. Its phase is the one the operator gives this spec
    at ``now`` (domain.tasks.task_phase), not the status it wrote before the last change: the
    answer to ``PATCH {"completed": false}`` says Open (or Overdue), never Completed."""
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
        phase=tasks.task_phase(spec, now=now),
        recurring_task=names.public_name(owner=user.id, name=recurring) if recurring else None,
        occurrence=status.get("occurrence"),
        created_at=meta.get("creationTimestamp"),
        live=True,
        resource_version=rv(body),
    )


def task_from_record(record: queries.TaskRead, *, user: User) -> m.TaskPublic:
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
    """``due`` → ascending by due; ``-priority`` → descending; anything else is refused."""
    descending = text.startswith("-")
    key = text.removeprefix("-").removeprefix("+")
    allowed: tuple[queries.SortKey, ...] = ("due", "priority", "created", "next", "title")
    for candidate in allowed:
        if key == candidate:
            return candidate, descending
    raise errors.InvalidInput(
        f"sort must be one of {', '.join(allowed)}, optionally with '-' for descending",
        fields=[("sort", f"unknown sort key {key!r}")],
    )


class Tasks:
    def __init__(
        self, *, objects: Objects, reads: queries.Queries, clock: Clock, pager: Pager, settings: ApiSettings
    ) -> None:
        self._objects = objects
        self._reads = reads
        self._clock = clock
        self._pager = pager
        self._namespace = settings.namespace

    async def list(self, *, user: User, query: TaskListQuery, cursor: str | None, limit: int) -> m.TaskPage:
        digest = query.digest()
        position = self._pager.position(cursor, user=user, digest=digest)
        rows = await self._reads.list_tasks(
            queries.TaskQuery(
                owner=user.id,
                owner_prefix=names.owner_prefix(user.id),
                namespace=self._namespace,
                now=self._clock.now(),
                **vars(query),
            ),
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
        value = task_from_body(body, user=user, now=self._clock.now())
        controller = owners.controller_of(body, kind="RecurringTask")
        series = str(controller["uid"]) if controller and controller.get("uid") else None
        if series is None:
            return value.model_copy(update={"next_occurrence": None if value.completed else value.due_at})
        try:
            upcoming = await self._reads.series_next_due(recurring_task_uid=series)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            # The object came from the API server (a write may just have succeeded there): a
            # database outage leaves this one field empty rather than failing the answer.
            logger.warning("nextOccurrence of %s left out: %s", value.name, str(error).splitlines()[0])
            return value
        return value.model_copy(update={"next_occurrence": upcoming})

    async def get(self, *, user: User, name: str) -> Stored:
        live = await self._objects.find_owned(crds.TASK, user=user, public=name)
        if live is not None:
            return Stored(value=await self._public(live, user=user), etag=preconditions.etag(version(live)))
        record = await self._history(user=user, name=name)
        if record is None:
            raise errors.NotFound("task", name)
        return Stored(value=task_from_record(record, user=user), etag=None)

    async def _history(self, *, user: User, name: str) -> queries.TaskRead | None:
        """The caller's history named ``name``: an occurrence completed or skipped, its object gone."""
        return await self._reads.find_history(
            owner=user.id,
            namespace=self._namespace,
            names=names.candidates(owner=user.id, public=name),
        )

    async def create(self, *, user: User, body: m.TaskCreate) -> Stored:
        fields = body.model_dump(exclude={"name"})
        with domain_validation():
            spec = resources.TaskSpec(owner=user.id, **fields)
        created = await self._objects.create(
            crds.TASK, user=user, public=body.name, spec=spec.to_wire(), what="task"
        )
        return Stored(value=await self._public(created, user=user), etag=preconditions.etag(version(created)))

    async def update(self, *, user: User, name: str, body: m.TaskUpdate, if_match: str | None) -> Stored:
        live = await self._owned_live(user=user, name=name)
        changes = changes_of(body)
        with domain_validation():
            resources.TaskSpec.model_validate(merge(live.get("spec") or {}, changes))
        patched = await self._objects.patch(crds.TASK, live=live, spec=changes, if_match=if_match)
        return Stored(value=await self._public(patched, user=user), etag=preconditions.etag(version(patched)))

    async def complete(self, *, user: User, name: str, if_match: str | None) -> Stored:
        return await self.update(user=user, name=name, body=m.TaskUpdate(completed=True), if_match=if_match)

    async def skip(self, *, user: User, name: str, if_match: str | None) -> m.TaskPublic:
        """Skip the caller's current occurrence ``name``: delete it, as ``kubectl delete`` does.

        The operator's delete handler records the skip and moves the series on (F24); it
        decides by what is recorded then, so a completion that won the race stays a completion.
        The answer is the occurrence as its history shows it.
        """
        live = await self._owned_live(user=user, name=name)
        series = await owners.live_controller(self._objects.kube, live, kind=crds.RECURRING_TASK)
        refusal = tasks.skip_refusal(
            live, series=series, shown=lambda name_: names.public_name(owner=user.id, name=name_)
        )
        if refusal is not None:
            raise errors.NotSkippable(refusal)
        await self._objects.delete(crds.TASK, live=live, if_match=if_match)
        value = task_from_body(live, user=user, now=self._clock.now())
        return value.model_copy(update={"phase": "Skipped", "live": False, "resource_version": None})

    async def delete(self, *, user: User, name: str, if_match: str | None) -> None:
        live = await self._owned_live(user=user, name=name)
        await self._objects.delete(crds.TASK, live=live, if_match=if_match)

    async def _owned_live(self, *, user: User, name: str) -> Body:
        live = await self._objects.find_owned(crds.TASK, user=user, public=name)
        if live is not None:
            return live
        if await self._history(user=user, name=name) is not None:
            raise errors.Frozen(
                f"task {name!r} is history (completed or skipped, its object gone): it cannot change"
            )
        raise errors.NotFound("task", name)
