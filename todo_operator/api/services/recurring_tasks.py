"""Recurring tasks: their schedules checked in the recurrence engine before the API server sees them."""

from __future__ import annotations

from datetime import datetime

from todo_operator.api import cursors, errors, names, preconditions
from todo_operator.api import models as m
from todo_operator.api.auth import User
from todo_operator.api.services.common import (
    Body,
    Objects,
    Pager,
    Stored,
    by_name,
    changes_of,
    domain_validation,
    merge,
    rv,
    version,
)
from todo_operator.api.settings import ApiSettings
from todo_operator.clock import Clock
from todo_operator.domain import crds, occurrences, recurrence, resources
from todo_operator.schedule_engine import ScheduleEngine
from todo_operator.store import queries


def _phase_caused(spec: Body, status: Body) -> str | None:
    """The phase the spec leads to, not the status written before the last change: suspending
    answers Suspended and resuming Active (an ended series stays Ended; the operator writes
    Ended anew on its next status when the schedule has run out meanwhile)."""
    phase = status.get("phase")
    if spec.get("suspend"):
        return "Suspended"
    return "Active" if phase == "Suspended" else phase


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
        phase=_phase_caused(spec, status),
        rule=status.get("rule"),
        current_task=names.public_name(owner=user.id, name=current) if current else None,
        next_due_at=status.get("nextDueAt"),
        occurrences=int(status.get("occurrences") or 0),
        last_completed_at=status.get("lastCompletedAt"),
        created_at=meta.get("creationTimestamp"),
        resource_version=rv(body),
    )


def recurring_task_from_record(record: queries.RecurringTaskRead, *, user: User) -> m.RecurringTaskPublic:
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
    """Compiled in the engine's threads, as one of the user's jobs there; a refused rule is invalid.

    A rule whose checks cost more than the compile budget is refused like any
    other invalid schedule (``recurrence.ScheduleTooCostly``).
    """
    try:
        return await engine.compile(occurrences.schedule_spec(schedule), owner=user.id)
    # ValueError: the schema's date-time pattern lets impossible dates and offsets through
    # ("2026-13-45T99:99", "-47:13"); fromisoformat then refuses them.
    except (recurrence.ScheduleError, ValueError) as error:
        raise errors.InvalidSchedule.on("schedule", str(error)) from None


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

    Too many far-apart occurrences to list within it is refused on ``field``, the
    parameter that asked for them.
    """
    try:
        return await engine.run(
            lambda: schedule.upcoming(after, count=count, inclusive=inclusive), owner=user.id
        )
    except recurrence.ScheduleTooCostly as error:
        raise errors.InvalidSchedule.on(field, str(error)) from None


class RecurringTasks:
    def __init__(
        self,
        *,
        objects: Objects,
        reads: queries.Queries,
        clock: Clock,
        pager: Pager,
        settings: ApiSettings,
        engine: ScheduleEngine,
    ) -> None:
        self._objects = objects
        self._reads = reads
        self._clock = clock
        self._pager = pager
        self._settings = settings
        self._engine = engine

    async def list(self, *, user: User, cursor: str | None, limit: int) -> m.RecurringTaskPage:
        digest = cursors.query_digest("recurring-tasks")
        position = self._pager.position(cursor, user=user, digest=digest)
        rows = await self._reads.list_recurring_tasks(
            owner=user.id,
            owner_prefix=names.owner_prefix(user.id),
            namespace=self._settings.namespace,
            after_name=None if position is None else position.key,
            limit=limit + 1,
        )
        page, next_cursor = self._pager.page(rows, limit=limit, user=user, digest=digest, position_of=by_name)
        return m.RecurringTaskPage(
            items=[recurring_task_from_record(row, user=user) for row in page], next_cursor=next_cursor
        )

    async def get(self, *, user: User, name: str) -> Stored:
        live = await self._objects.owned(crds.RECURRING_TASK, user=user, public=name, what="recurring task")
        return Stored(value=recurring_task_from_body(live, user=user), etag=preconditions.etag(version(live)))

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
            value=recurring_task_from_body(created, user=user), etag=preconditions.etag(version(created))
        )

    async def update(
        self, *, user: User, name: str, body: m.RecurringTaskUpdate, if_match: str | None
    ) -> Stored:
        live = await self._objects.owned(crds.RECURRING_TASK, user=user, public=name, what="recurring task")
        changes = changes_of(body)
        if "taskTemplate" in changes:
            if changes["taskTemplate"] is None:
                raise errors.InvalidInput.on(
                    "taskTemplate", "cannot be removed", detail="taskTemplate cannot be removed"
                )
            changes["taskTemplate"] = {**changes["taskTemplate"], "owner": user.id}
        merged = merge(live.get("spec") or {}, changes)
        with domain_validation():
            spec = resources.RecurringTaskSpec.model_validate(merged)
        await compile_schedule(self._engine, spec.schedule, user=user)
        if "schedule" in changes and changes["schedule"] is not None:
            # A merge patch would keep old schedule fields (every + a new rrule): replace it whole.
            changes["schedule"] = _with_removals(live["spec"].get("schedule") or {}, changes["schedule"])
        patched = await self._objects.patch(crds.RECURRING_TASK, live=live, spec=changes, if_match=if_match)
        return Stored(
            value=recurring_task_from_body(patched, user=user), etag=preconditions.etag(version(patched))
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
        rows = await self._reads.list_tasks(
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
        recorded = [
            m.Occurrence(
                name=names.public_name(owner=user.id, name=row.name),
                occurrence=row.occurrence,
                due_at=row.due_at,
                completed=row.completed,
                completed_at=row.completed_at,
                phase=row.phase,
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
        return m.Occurrences(
            past=[row for row in recorded if row.completed or not row.live],
            current=[row for row in recorded if not row.completed and row.live],
            upcoming=coming,
        )

    async def preview(self, body: m.SchedulePreview, *, user: User) -> m.SchedulePreviewResult:
        if body.count > self._settings.preview_max_occurrences:
            raise errors.InvalidInput.on(
                "count",
                "too many occurrences asked",
                detail=f"count must be at most {self._settings.preview_max_occurrences}",
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
