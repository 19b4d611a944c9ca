"""Reconciling Tasks and RecurringTasks: the operator's business logic.

Both reconcilers are level-triggered: they look at the object as it is now
(spec, status, the occurrences that exist) and make the world match, so any
of them can run again at any time — after a crash, a duplicate watch event or
a restart — and do nothing twice:

* occurrences have deterministic names and carry their index as a label; a
  retry finds the occurrence it made (F1, F2);
* the moment a task was completed is recorded once in PostgreSQL and read
  back from there, so a retry computes the same next due date;
* outbox event ids are derived from what happened, so a retry appends no
  second event;
* the schedule advances only from the RecurringTask's *current* occurrence,
  so a task completed twice advances it once (F18).

Kopf handlers (``handlers.py``) only parse the call and translate errors.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from todo_operator.clock import Clock
from todo_operator.domain import conditions, crds, lifecycle, occurrences, recurrence, resources, tasks
from todo_operator.domain.events import Event, Seen
from todo_operator.kube import (
    AlreadyExists,
    Body,
    Conflict,
    Kube,
    KubeError,
    NotFound,
    event_manifest,
    owners,
)
from todo_operator.operator import objects
from todo_operator.operator.claims import take_up_record
from todo_operator.schedule_engine import ScheduleEngine
from todo_operator.store.claims import RecordClaims
from todo_operator.store.records import RecordDeleted, RecordNotFound, Records, RecurringTaskWrite, TaskWrite
from todo_operator.telemetry.metrics import OperatorMetrics

logger = logging.getLogger(__name__)


class InvalidSpec(Exception):
    """The spec cannot be acted on (it got past the schema): report it, don't retry."""


class RetryLater(Exception):
    """Something this reconcile depends on is not there yet; retry shortly."""


class ReminderSync(Protocol):
    """Keeps a Task's reminders in step with it (``reminders.ReminderReconciler``)."""

    async def sync_task(self, task: Body, spec: resources.TaskSpec) -> None: ...


class ClusterEventRecorder(Protocol):
    """Posts Kubernetes Events about an object (what ``kubectl describe`` shows)."""

    def normal(self, body: Body, *, reason: str, message: str) -> None: ...

    def warning(self, body: Body, *, reason: str, message: str) -> None: ...


class ClusterEvents:
    """Kubernetes Events (core/v1) that we post ourselves, queued so recording never blocks a reconcile.

    Not ``kopf.event``: that needs Kopf's context variables, which the
    scheduler's task and the ``notify`` process do not have. Events are
    best effort, as in Kubernetes itself: one that cannot be posted is logged.
    """

    def __init__(self, *, kube: Kube, clock: Clock, component: str, shard: str | None = None) -> None:
        self._kube = kube
        self._clock = clock
        self._component = component
        # Which shard acted, in each Event's reportingInstance: `kubectl describe` tells a user.
        self._instance = f"{component}-{shard}" if shard else None
        self._pending: collections.deque[tuple[Body, str, str, str]] = collections.deque(maxlen=10_000)
        self._wake = asyncio.Event()

    def normal(self, body: Body, *, reason: str, message: str) -> None:
        self._pending.append((body, "Normal", reason, message))
        self._wake.set()

    def warning(self, body: Body, *, reason: str, message: str) -> None:
        self._pending.append((body, "Warning", reason, message))
        self._wake.set()

    async def flush(self) -> None:
        while self._pending:
            body, type_, reason, message = self._pending.popleft()
            manifest = event_manifest(
                involved=body,
                type_=type_,
                reason=reason,
                message=message,
                component=self._component,
                instance=self._instance,
                at=self._clock.now(),
            )
            try:
                await self._kube.create_builtin(manifest)
            except KubeError as error:
                logger.warning(
                    "could not post the event %s on %s: %s", reason, manifest["involvedObject"], error
                )

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()


@dataclass(frozen=True, kw_only=True)
class ObjectMeta:
    namespace: str
    name: str
    uid: str
    generation: int
    created_at: datetime

    @classmethod
    def of(cls, body: Body) -> ObjectMeta:
        meta = body["metadata"]
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            generation=int(meta.get("generation") or 1),
            created_at=datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")),
        )

    @property
    def subject(self) -> str:
        return f"{self.namespace}/{self.name}"

    def seen(self, *, observed_generation: int | None, owner: str) -> Seen:
        """This object as its lifecycle events see it."""
        return Seen(
            subject=self.subject,
            uid=self.uid,
            generation=self.generation,
            observed_generation=observed_generation,
            owner=owner,
        )


def observed[StatusT: (resources.TaskStatus, resources.RecurringTaskStatus, resources.ReminderStatus)](
    status: StatusT,
    *,
    meta: ObjectMeta,
    ready: bool,
    reason: str,
    message: str,
    now: datetime,
    **changes: Any,
) -> StatusT:
    """``status`` with ``changes``, this generation observed and its conditions set
    (Ready, and Stalled or Reconciling while not ready: domain.conditions.readiness)."""
    condition = conditions.readiness(
        status.conditions,
        ready=ready,
        phase=changes.get("phase", status.phase),
        reason=reason,
        message=message,
        now=now,
        generation=meta.generation,
    )
    return status.model_copy(
        update={**changes, "observed_generation": meta.generation, "conditions": condition}
    )


def status_wire(status: resources.Model) -> dict[str, Any]:
    # Fields that became empty must be removed from the stored status, so the merge
    # patch carries them as null rather than leaving them out.
    wire = status.model_dump(mode="json", by_alias=True)
    return {key: value for key, value in wire.items() if value != []}


def _recorded[StatusT: (resources.TaskStatus, resources.RecurringTaskStatus)](
    model: type[StatusT], recorded: dict[str, Any], *, generation: int
) -> StatusT | None:
    """A row's status as the object's, observed at the row's generation; None if it no longer parses."""
    try:
        status = model.model_validate(recorded)
    except ValidationError:
        return None
    return status.model_copy(update={"observed_generation": generation})


class TaskReconciler:
    def __init__(
        self,
        *,
        kube: Kube,
        records: Records,
        claims: RecordClaims,
        clock: Clock,
        cluster_events: ClusterEventRecorder,
        recurring: RecurringTaskReconciler,
        reminders: ReminderSync | None = None,
    ) -> None:
        self._kube = kube
        self._records = records
        self._claims = claims
        self._clock = clock
        self._cluster_events = cluster_events
        self._recurring = recurring
        self._reminders = reminders

    async def reconcile(self, body: Body) -> None:
        meta = ObjectMeta.of(body)
        status = resources.TaskStatus.model_validate(body.get("status") or {})
        now = self._clock.now()
        spec = await self._valid_spec(body, meta=meta, status=status, now=now)
        if status.observed_generation is None:
            if (taken := await self._taken_up(body, spec, status)) is None:
                return  # another object holds the name now
            status = taken
        phase = tasks.task_phase(spec, now=now)
        owner_reference = owners.controller_of(body, kind="RecurringTask")
        events = tasks.task_events(
            meta.seen(observed_generation=status.observed_generation, owner=spec.owner),
            spec,
            phase=phase,
            previous=status.phase,
        )
        reason = {"Open": "Open", "Overdue": "Overdue", "Completed": "Completed"}[phase]
        new_status = observed(
            status,
            meta=meta,
            ready=True,
            reason=reason,
            message=f"task is {phase.lower()}",
            now=now,
            phase=phase,
            recurring_task=owner_reference["name"] if owner_reference else None,
            occurrence=objects.occurrence_index(body),
        )
        try:
            completed_at = await self._save_task(
                body,
                meta=meta,
                spec=spec,
                phase=phase,
                status=new_status,
                events=events,
                now=now,
            )
        except RecordDeleted as error:
            if error.series:
                # An occurrence made after its series was deleted (F23): not the user's to keep.
                logger.info("%s: its series is deleted; removing it", meta.subject)
                with contextlib.suppress(NotFound):
                    await self._kube.delete(crds.TASK, namespace=meta.namespace, name=meta.name)
            return  # a deleted Task: forget() records it
        new_status = new_status.model_copy(update={"completed_at": completed_at})
        await self._kube.patch_status(
            crds.TASK, namespace=meta.namespace, name=meta.name, status=status_wire(new_status)
        )
        if phase == "Completed" and status.phase != "Completed":
            self._cluster_events.normal(body, reason="Completed", message=f"completed at {completed_at}")
        elif phase == "Overdue" and status.phase != "Overdue":
            self._cluster_events.warning(body, reason="Overdue", message=f"was due {spec.due_at}")
        if self._reminders is not None:
            await self._reminders.sync_task(body, spec)

        if spec.completed:
            await self._advance_series(body)

    async def _taken_up(
        self, body: Body, spec: resources.TaskSpec, status: resources.TaskStatus
    ) -> resources.TaskStatus | None:
        """The status last recorded for this Task's name, if PostgreSQL has it (``operator/claims.py``);
        None if another object holds the name now."""
        taken = await take_up_record(
            body,
            kind=crds.TASK,
            table="tasks",
            kube=self._kube,
            claims=self._claims,
            cluster_events=self._cluster_events,
            spec=spec,
        )
        if taken is None:
            return None  # another object holds the name now
        row = taken.row
        if row is None:
            return status
        return _recorded(resources.TaskStatus, row.status, generation=row.generation) or status

    async def _valid_spec(
        self, body: Body, *, meta: ObjectMeta, status: resources.TaskStatus, now: datetime
    ) -> resources.TaskSpec:
        """The Task's spec; one that cannot be acted on is rejected (Ready=False) and raised."""
        try:
            return resources.TaskSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            message = resources.describe_validation_error(error)
            await self._reject(body, meta=meta, status=status, message=message, now=now)
            raise InvalidSpec(message) from error

    async def _save_task(
        self,
        body: Body,
        *,
        meta: ObjectMeta,
        spec: resources.TaskSpec,
        phase: resources.TaskPhase,
        status: resources.TaskStatus,
        events: list[Event],
        now: datetime,
    ) -> datetime | None:
        owner_reference = owners.controller_of(body, kind="RecurringTask")
        return await self._records.save_task(
            TaskWrite(
                uid=meta.uid,
                namespace=meta.namespace,
                name=meta.name,
                owner=spec.owner,
                title=spec.title,
                description=spec.description,
                priority=spec.priority,
                tags=spec.tags,
                due_at=spec.due_at,
                completed=spec.completed,
                completed_at=now if spec.completed else None,
                phase=phase,
                recurring_task_uid=owner_reference["uid"] if owner_reference else None,
                occurrence=objects.occurrence_index(body),
                recurring_pattern=None,
                recurring_end_date=None,
                next_occurrence=None,
                reminder_at=None,
                generation=meta.generation,
                spec=spec.to_wire(),
                status=status.to_wire(),
                created_at=meta.created_at,
                updated_at=now,
            ),
            events=events,
        )

    async def _advance_series(self, body: Body) -> None:
        """Let the RecurringTask of this completed occurrence move on now."""
        series = await owners.live_controller(self._kube, body, kind=crds.RECURRING_TASK)
        if series is not None:
            await self._recurring.reconcile(series)

    async def forget(self, body: Body) -> None:
        """Record the deletion (the row stays: PostgreSQL keeps the history).

        Deleting a live series' current occurrence is a skip (F24, docs/RECURRENCE.md): unless
        a completion is recorded, its row becomes history in phase ``Skipped`` with a
        ``task.skipped`` event, and the series moves on now, not at its next change. Both
        sides read the same recorded completion, so the series skips exactly what is recorded
        as skipped.
        """
        meta = ObjectMeta.of(body)
        raw_spec = body.get("spec") or {}
        owner = raw_spec.get("owner", "")
        series = await owners.live_controller(self._kube, body, kind=crds.RECURRING_TASK)
        current = series is not None and (series.get("status") or {}).get("currentTask") == meta.name
        skipped = await self._records.mark_task_deleted(
            uid=meta.uid,
            at=self._clock.now(),
            skip=current,
            deleted=Event(
                type="task.deleted", subject=meta.subject, partition_key=owner, key=f"task.deleted:{meta.uid}"
            ),
            skipped=tasks.skipped_event(
                meta.subject,
                uid=meta.uid,
                spec=raw_spec,
                series=series["metadata"]["name"] if series is not None else None,
                occurrence=objects.occurrence_index(body),
            ),
        )
        if skipped:
            logger.info("%s: skipped (the current occurrence was deleted)", meta.subject)
        if self._reminders is not None:
            # The task is going: its pending reminders must not fire (they end Cancelled).
            try:
                spec = resources.TaskSpec.model_validate(raw_spec)
            except ValidationError:
                spec = None
            if spec is not None:
                await self._reminders.sync_task(body, spec)
        if current and series is not None:
            await self._recurring.reconcile(series)

    async def _reject(
        self, body: Body, *, meta: ObjectMeta, status: resources.TaskStatus, message: str, now: datetime
    ) -> None:
        rejected = observed(status, meta=meta, ready=False, reason="InvalidSpec", message=message, now=now)
        await self._kube.patch_status(
            crds.TASK, namespace=meta.namespace, name=meta.name, status=status_wire(rejected)
        )
        self._cluster_events.warning(body, reason="InvalidSpec", message=message)


# A plan made from a version that changed before it committed is made again from the fresh one;
# each attempt re-reads, so this many in a row means the object is being rewritten continuously.
CONFLICT_ATTEMPTS = 5

_REASONS = {
    "Active": ("Scheduled", "next occurrence due {due}"),
    "Suspended": ("Suspended", "suspended: no new occurrences are created"),
    "Ended": ("Ended", "the schedule has ended"),
}


class RecurringTaskReconciler:
    """Observe a series, let ``domain.lifecycle.decide`` say what happens, carry it out.

    Carrying out a plan: record the row (with its events), commit the status over the
    version the plan was made from, then make the occurrence the status names. The
    commit is the point of no return (lifecycle rule 1): a plan that loses it made
    nothing and is made again from the fresh version.
    """

    def __init__(
        self,
        *,
        kube: Kube,
        records: Records,
        claims: RecordClaims,
        clock: Clock,
        cluster_events: ClusterEventRecorder,
        engine: ScheduleEngine,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self._kube = kube
        self._records = records
        self._claims = claims
        self._clock = clock
        self._cluster_events = cluster_events
        self._engine = engine
        self._metrics = metrics

    async def _timed[T](self, compute: Callable[[], T]) -> T:
        """Schedule arithmetic, timed, in the engine's threads: a costly rule must not stop the loop."""
        metrics = self._metrics
        return await self._engine.run(
            (lambda: metrics.time_next_occurrence(compute)) if metrics is not None else compute
        )

    async def reconcile(self, body: Body) -> None:
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                await self._reconcile_version(body)
                return
            except Conflict:
                if self._metrics is not None:
                    self._metrics.reconcile_conflicts.labels("RecurringTask").inc()
                fresh = await self._kube.get(
                    crds.RECURRING_TASK,
                    namespace=body["metadata"]["namespace"],
                    name=body["metadata"]["name"],
                )
                if fresh is None or fresh["metadata"].get("uid") != body["metadata"].get("uid"):
                    return  # deleted (and maybe re-created: a new uid is a new series with its own handler)
                body = fresh
        raise RetryLater(f"{ObjectMeta.of(body).subject} kept changing while it was reconciled")

    async def _reconcile_version(self, body: Body) -> None:
        """Decide and carry out, step by step, until the series rests (or a step loses its commit)."""
        meta = ObjectMeta.of(body)
        first = status = resources.RecurringTaskStatus.model_validate(body.get("status") or {})
        now = self._clock.now()
        spec, schedule = await self._valid_spec(body, meta=meta, status=status, now=now)
        if status.observed_generation is None:
            if (taken := await self._taken_up(body, spec, status)) is None:
                return  # another object holds the name now
            first = status = taken
        made = False
        while True:
            series = await self._observe(body, meta=meta, spec=spec, status=status, made=made)
            decide = functools.partial(lifecycle.decide, series, schedule=schedule, now=now)
            # With an occurrence pending the step is to make or promote it: no schedule arithmetic.
            plan = decide() if status.pending is not None else await self._timed(decide)
            if plan.outcome == "gone":
                return  # the series is being deleted: forget() ends it
            pending = plan.make
            if pending is not None:
                await self._make(body, spec=spec, occurrence=pending)
                made = True
                continue
            if plan.status.pending is not None:
                # Only the decision is committed: the row, the events and the Ready condition
                # follow with the promotion, once the occurrence exists (a crash in between
                # leaves observedGeneration as it was, so the next reconcile records them).
                new_status = plan.status
            else:
                new_status = self._observed(plan.status, meta=meta, rule=schedule.rule_text, now=now)
                try:
                    await self._record(
                        meta=meta, spec=spec, first=first, new=new_status, ended=status, now=now
                    )
                except RecordDeleted:
                    return  # deleted since it was read: nothing more of it is made (F23)
            # The commit (lifecycle rule 1); a Conflict here means deciding again from the fresh version.
            body = await self._kube.patch_status(
                crds.RECURRING_TASK,
                namespace=meta.namespace,
                name=meta.name,
                status=status_wire(new_status),
                resource_version=body["metadata"].get("resourceVersion"),
            )
            self._announce(body, plan=plan, status=new_status, previous=status)
            status, made = new_status, False
            if plan.outcome == "ended":
                # Its event follows the commit, never a decision that might not commit; a crash
                # before this is made good by the next reconcile (the same event id).
                with contextlib.suppress(RecordDeleted):
                    await self._record(meta=meta, spec=spec, first=first, new=status, ended=status, now=now)
            if status.pending is None:
                break
        if status.occurrences - 1 > spec.history_limit:
            # Until then there are no more completed occurrences than history keeps (and no list).
            await self._prune_history(meta=meta, spec=spec, current_task=status.current_task)

    async def _valid_spec(
        self, body: Body, *, meta: ObjectMeta, status: resources.RecurringTaskStatus, now: datetime
    ) -> tuple[resources.RecurringTaskSpec, recurrence.Recurrence]:
        """The spec and its compiled schedule; a spec that cannot be acted on is rejected and raised."""
        try:
            spec = resources.RecurringTaskSpec.model_validate(body.get("spec") or {})
            return spec, await self._engine.compile(occurrences.schedule_spec(spec.schedule))
        except (ValidationError, recurrence.ScheduleError) as error:
            if isinstance(error, ValidationError):
                message = resources.describe_validation_error(error)
            else:
                message = f"spec.schedule: {error}"
            await self._reject(body, meta=meta, status=status, message=message, now=now)
            raise InvalidSpec(message) from error

    async def _taken_up(
        self, body: Body, spec: resources.RecurringTaskSpec, status: resources.RecurringTaskStatus
    ) -> resources.RecurringTaskStatus | None:
        """The status last recorded for this series' name, with its live occurrences made again;
        None if another object holds the name now.

        A series taken up from a restored row goes on from its count: the occurrences the row's
        history holds as live are made again as they were recorded (a completed one completed),
        each of which then takes up its own row (``operator/claims.py``).
        """
        taken = await take_up_record(
            body,
            kind=crds.RECURRING_TASK,
            table="recurring_tasks",
            kube=self._kube,
            claims=self._claims,
            cluster_events=self._cluster_events,
            spec=spec,
        )
        if taken is None:
            return None  # another object holds the name now
        row = taken.row
        if row is None:
            return status
        meta = ObjectMeta.of(body)
        for occurrence in await self._claims.live_occurrences(series_uid=meta.uid):
            if await self._kube.get(crds.TASK, namespace=meta.namespace, name=occurrence.name) is not None:
                continue
            manifest = objects.recorded_occurrence(
                recurring_task=body,
                spec=spec,
                name=occurrence.name,
                index=occurrence.index,
                task=occurrence.spec,
            )
            with contextlib.suppress(AlreadyExists):
                await self._kube.create(crds.TASK, manifest)
        return _recorded(resources.RecurringTaskStatus, row.status, generation=row.generation) or status

    @staticmethod
    def _observed(
        status: resources.RecurringTaskStatus, *, meta: ObjectMeta, rule: str, now: datetime
    ) -> resources.RecurringTaskStatus:
        reason = {"Active": "Scheduled", "Suspended": "Suspended", "Ended": "Ended"}[status.phase or "Active"]
        message = {
            "Scheduled": f"next occurrence due {status.next_due_at}",
            "Suspended": "suspended: no new occurrences are created",
            "Ended": "the schedule has ended",
        }[reason]
        return observed(status, meta=meta, ready=True, reason=reason, message=message, now=now, rule=rule)

    def _announce(
        self,
        body: Body,
        *,
        plan: lifecycle.Plan,
        status: resources.RecurringTaskStatus,
        previous: resources.RecurringTaskStatus,
    ) -> None:
        """The Kubernetes Events of a committed step (what ``kubectl describe`` tells)."""
        if plan.outcome == "ended":
            self._cluster_events.normal(
                body, reason="Ended", message="the schedule has no further occurrences"
            )
        elif plan.outcome == "promoted":
            self._cluster_events.normal(
                body,
                reason="OccurrenceCreated",
                message=f"occurrence {status.occurrences} {status.current_task} due {status.next_due_at}",
            )
        elif plan.outcome == "skipped":
            self._cluster_events.normal(
                body,
                reason="Skipped",
                message=f"occurrence {previous.occurrences} {previous.current_task} was deleted before"
                " it was completed: skipped",
            )

    async def _observe(
        self,
        body: Body,
        *,
        meta: ObjectMeta,
        spec: resources.RecurringTaskSpec,
        status: resources.RecurringTaskStatus,
        made: bool,
    ) -> lifecycle.Series:
        """What ``decide`` needs; ``made``: the pending occurrence was just created (or found)."""
        current = None
        pending_exists = made
        if status.pending is not None and not made:
            pending_exists = (
                await self._kube.get(crds.TASK, namespace=meta.namespace, name=status.pending.task)
                is not None
            )
        elif status.current_task is not None:
            task = await self._kube.get(crds.TASK, namespace=meta.namespace, name=status.current_task)
            current = await self._current(task, meta=meta, name=status.current_task)
        return lifecycle.Series(
            name=meta.name,
            generation=meta.generation,
            created_at=meta.created_at,
            anchor=spec.anchor,
            suspended=spec.suspend,
            deleting=bool(body["metadata"].get("deletionTimestamp")),
            status=status,
            current=current,
            pending_exists=pending_exists,
        )

    async def _current(self, task: Body | None, *, meta: ObjectMeta, name: str) -> lifecycle.Current:
        """The current occurrence as ``decide`` sees it: by this series' uid, with its recorded completion."""
        if task is None:
            return lifecycle.Current(state="absent")
        controller = owners.controller_of(task, kind="RecurringTask")
        if controller is None or controller.get("uid") != meta.uid:
            raise InvalidSpec(
                f"a Task named {name!r} already exists and is not an occurrence of this RecurringTask"
            )
        task_spec = task.get("spec") or {}
        due_at = datetime.fromisoformat(task_spec["dueAt"].replace("Z", "+00:00"))
        deleting = bool(task["metadata"].get("deletionTimestamp"))
        if task_spec.get("completed"):
            try:
                completed_at = await self._records.completion_instant(task_uid=task["metadata"]["uid"])
            except RecordNotFound as error:
                if deleting:  # completed and deleted before its handler recorded it: never done
                    return lifecycle.Current(state="deleted", due_at=due_at)
                raise RetryLater(str(error)) from error
            return lifecycle.Current(state="completed", due_at=due_at, completed_at=completed_at)
        return lifecycle.Current(state="deleted" if deleting else "open", due_at=due_at)

    async def _record(
        self,
        *,
        meta: ObjectMeta,
        spec: resources.RecurringTaskSpec,
        first: resources.RecurringTaskStatus,
        new: resources.RecurringTaskStatus,
        ended: resources.RecurringTaskStatus,
        now: datetime,
    ) -> None:
        """Save the row of ``new`` with its events.

        ``first``: the status as this reconcile found it (whether the object was seen before,
        at which generation); ``ended``: the status as last committed (``recurringtask.ended``
        is told once that says Ended).
        """
        rule = new.rule
        seen = meta.seen(observed_generation=first.observed_generation, owner=spec.task_template.owner)
        events = lifecycle.series_events(seen, spec, new=new, ended=ended.phase == "Ended")
        await self._records.save_recurring_task(
            RecurringTaskWrite(
                uid=meta.uid,
                namespace=meta.namespace,
                name=meta.name,
                owner=spec.task_template.owner,
                title=spec.task_template.title,
                rule=rule,
                time_zone=spec.schedule.time_zone,
                anchor=spec.anchor,
                phase=new.phase or "Active",
                current_task=new.current_task,
                next_due_at=new.next_due_at,
                occurrences=new.occurrences,
                last_completed_at=new.last_completed_at,
                generation=meta.generation,
                spec=spec.to_wire(),
                status=new.to_wire(),
                created_at=meta.created_at,
                updated_at=now,
            ),
            events=events,
        )

    async def _make(
        self, body: Body, *, spec: resources.RecurringTaskSpec, occurrence: resources.PendingOccurrence
    ) -> None:
        """Create the committed occurrence unless it exists (two makers create one: its name is fixed)."""
        meta = ObjectMeta.of(body)
        manifest = objects.occurrence_task(
            recurring_task=body, spec=spec, due_at=occurrence.due_at, index=occurrence.index
        )
        if manifest["metadata"]["name"] != occurrence.task:
            raise ValueError(f"occurrence {occurrence.index} of {meta.subject} is named {occurrence.task!r}")
        try:
            await self._kube.create(crds.TASK, manifest)
        except AlreadyExists:
            found = await self._kube.get(crds.TASK, namespace=meta.namespace, name=occurrence.task)
            controller = owners.controller_of(found or {}, kind="RecurringTask")
            if controller is None or controller.get("uid") != meta.uid:
                raise InvalidSpec(
                    f"a Task named {occurrence.task!r} already exists and is not an occurrence of this"
                    " RecurringTask"
                ) from None
            return
        logger.info(
            "occurrence %s of %s due %s", occurrence.index, meta.subject, occurrence.due_at.isoformat()
        )

    async def _prune_history(
        self, *, meta: ObjectMeta, spec: resources.RecurringTaskSpec, current_task: str | None
    ) -> None:
        """Keep the ``historyLimit`` most recent completed occurrences as objects (PostgreSQL keeps all)."""
        owned = await self._kube.list(
            crds.TASK, namespace=meta.namespace, labels=objects.occurrence_labels(recurring_task_uid=meta.uid)
        )
        completed = sorted(
            (
                task
                for task in owned
                if (task.get("spec") or {}).get("completed") and task["metadata"]["name"] != current_task
            ),
            key=lambda task: objects.occurrence_index(task) or 0,
            reverse=True,
        )
        for task in completed[spec.history_limit :]:
            await self._kube.delete(crds.TASK, namespace=meta.namespace, name=task["metadata"]["name"])

    async def forget(self, body: Body) -> None:
        meta = ObjectMeta.of(body)
        owner = ((body.get("spec") or {}).get("taskTemplate") or {}).get("owner", "")
        event = Event(
            type="recurringtask.deleted",
            subject=meta.subject,
            partition_key=owner,
            key=f"recurringtask.deleted:{meta.uid}",
        )
        await self._records.mark_deleted(
            table="recurring_tasks", uid=meta.uid, at=self._clock.now(), events=[event]
        )
        if "orphan" in (body["metadata"].get("finalizers") or []):
            return  # deleted with --cascade=orphan: the occurrences are the user's to keep
        # Nothing of a deleted series survives it (F23). The garbage collector would remove its
        # occurrences once it is gone, but one made after its deletion was seen must go too: it is
        # either listed here (made before this list), or its own handler finds the series recorded
        # as deleted (made after: the mark above came first) and removes it.
        for task in await self._kube.list(
            crds.TASK, namespace=meta.namespace, labels=objects.occurrence_labels(recurring_task_uid=meta.uid)
        ):
            with contextlib.suppress(NotFound):
                await self._kube.delete(crds.TASK, namespace=meta.namespace, name=task["metadata"]["name"])

    async def _reject(
        self,
        body: Body,
        *,
        meta: ObjectMeta,
        status: resources.RecurringTaskStatus,
        message: str,
        now: datetime,
    ) -> None:
        rejected = observed(
            status, meta=meta, ready=False, reason="InvalidSchedule", message=message, now=now
        )
        await self._kube.patch_status(
            crds.RECURRING_TASK, namespace=meta.namespace, name=meta.name, status=status_wire(rejected)
        )
        self._cluster_events.warning(body, reason="InvalidSchedule", message=message)
