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
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from todo_operator.clock import Clock
from todo_operator.domain import conditions, crds, occurrences, recurrence, resources, tasks
from todo_operator.domain.events import Event, EventType
from todo_operator.operator import objects
from todo_operator.operator.kube import (
    AlreadyExists,
    Body,
    Conflict,
    Kube,
    KubeError,
    NotFound,
    event_manifest,
)
from todo_operator.schedule_engine import ScheduleEngine
from todo_operator.store.records import RecordNotFound, Records, RecurringTaskRow, TaskRow
from todo_operator.telemetry.metrics import OperatorMetrics

logger = logging.getLogger(__name__)

READY = "Ready"


class InvalidSpec(Exception):
    """The spec cannot be acted on (it got past the schema): report it, don't retry."""


class RetryLater(Exception):
    """Something this reconcile depends on is not there yet; retry shortly."""


class ReminderSync(Protocol):
    """Keeps a Task's reminders in step with it (``reminders.ReminderReconciler``)."""

    async def sync_task(self, task: Body, spec: resources.TaskSpec) -> None: ...


class EventRecorder(Protocol):
    """Posts Kubernetes Events about an object (what ``kubectl describe`` shows)."""

    def normal(self, body: Body, *, reason: str, message: str) -> None: ...

    def warning(self, body: Body, *, reason: str, message: str) -> None: ...


class PostedEvents:
    """Kubernetes Events (core/v1) that we post ourselves, queued so recording never blocks a reconcile.

    Not ``kopf.event``: that needs Kopf's context variables, which the
    scheduler's task and the ``notify`` process do not have. Events are
    best effort, as in Kubernetes itself: one that cannot be posted is logged.
    """

    def __init__(self, *, kube: Kube, clock: Clock, component: str) -> None:
        self._kube = kube
        self._clock = clock
        self._component = component
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
    """``status`` with ``changes``, this generation observed and its Ready condition set."""
    condition = conditions.with_condition(
        status.conditions,
        type_=READY,
        status="True" if ready else "False",
        reason=reason,
        message=message,
        now=now,
        generation=meta.generation,
    )
    return status.model_copy(
        update={**changes, "observed_generation": meta.generation, "conditions": condition}
    )


def _lifecycle_events(
    *,
    prefix: str,
    meta: ObjectMeta,
    owner: str,
    observed_generation: int | None,
    data: dict[str, Any],
) -> list[Event]:
    """``<kind>.created`` the first time an object is recorded, ``<kind>.updated`` on a new generation.

    An object edited before any status said what was seen gets both: an earlier attempt
    may have recorded ``created`` (the same id, so not again) with the older spec and then
    failed to write the status (F3); only ``updated`` can then carry the edit to consumers.
    """
    created: EventType = "task.created" if prefix == "task" else "recurringtask.created"
    updated: EventType = "task.updated" if prefix == "task" else "recurringtask.updated"
    found: list[tuple[EventType, str]] = []
    if observed_generation is None:
        found.append((created, f"{created}:{meta.uid}"))
    if meta.generation > (1 if observed_generation is None else observed_generation):
        found.append((updated, f"{updated}:{meta.uid}:{meta.generation}"))
    return [Event(type=t, subject=meta.subject, partition_key=owner, key=key, data=data) for t, key in found]


def status_wire(status: resources.Model) -> dict[str, Any]:
    # Fields that became empty must be removed from the stored status, so the merge
    # patch carries them as null rather than leaving them out.
    wire = status.model_dump(mode="json", by_alias=True)
    return {key: value for key, value in wire.items() if value != []}


class TaskReconciler:
    def __init__(
        self,
        *,
        kube: Kube,
        records: Records,
        clock: Clock,
        events: EventRecorder,
        recurring: RecurringTaskReconciler,
        reminders: ReminderSync | None = None,
    ) -> None:
        self._kube = kube
        self._records = records
        self._clock = clock
        self._events = events
        self._recurring = recurring
        self._reminders = reminders

    async def reconcile(self, body: Body) -> None:
        meta = ObjectMeta.of(body)
        status = resources.TaskStatus.model_validate(body.get("status") or {})
        now = self._clock.now()
        try:
            spec = resources.TaskSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            message = resources.describe_validation_error(error)
            await self._reject(body, meta=meta, status=status, message=message, now=now)
            raise InvalidSpec(message) from error

        phase = tasks.task_phase(spec, now=now)
        owner_reference = objects.controller_of(body, kind="RecurringTask")
        data = {"title": spec.title, "owner": spec.owner, "priority": spec.priority, "phase": phase}
        events = _lifecycle_events(
            prefix="task",
            meta=meta,
            owner=spec.owner,
            observed_generation=status.observed_generation,
            data=data,
        )
        if phase == "Overdue" and status.phase != "Overdue":
            events.append(
                Event(
                    type="task.overdue",
                    subject=meta.subject,
                    partition_key=spec.owner,
                    key=f"task.overdue:{meta.uid}:{spec.due_at.isoformat() if spec.due_at else ''}",
                    data=data,
                )
            )
        if phase == "Completed" and status.phase != "Completed":
            events.append(
                Event(
                    type="task.completed",
                    subject=meta.subject,
                    partition_key=spec.owner,
                    key=f"task.completed:{meta.uid}:{meta.generation}",
                    data=data,
                )
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
        completed_at = await self._records.save_task(
            TaskRow(
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
                status=new_status.to_wire(),
                created_at=meta.created_at,
                updated_at=now,
            ),
            events=events,
        )
        new_status = new_status.model_copy(update={"completed_at": completed_at})
        await self._kube.patch_status(
            crds.TASK, namespace=meta.namespace, name=meta.name, status=status_wire(new_status)
        )
        if phase == "Completed" and status.phase != "Completed":
            self._events.normal(body, reason="Completed", message=f"completed at {completed_at}")
        elif phase == "Overdue" and status.phase != "Overdue":
            self._events.warning(body, reason="Overdue", message=f"was due {spec.due_at}")
        if self._reminders is not None:
            await self._reminders.sync_task(body, spec)

        if spec.completed:
            await self._advance_series(body, only_if_current=False)

    async def _advance_series(self, body: Body, *, only_if_current: bool) -> None:
        """Let the RecurringTask of this occurrence (the one of its uid) move on now.

        With ``only_if_current``, only when this Task is the series' current occurrence: a
        pruned old occurrence changes nothing.
        """
        owner_reference = objects.controller_of(body, kind="RecurringTask")
        if owner_reference is None:
            return
        meta = ObjectMeta.of(body)
        owner = await self._kube.get(
            crds.RECURRING_TASK, namespace=meta.namespace, name=owner_reference["name"]
        )
        if owner is None or owner["metadata"].get("uid") != owner_reference["uid"]:
            return
        if owner["metadata"].get("deletionTimestamp"):
            return  # the series is going, and its occurrences with it
        if only_if_current and (owner.get("status") or {}).get("currentTask") != meta.name:
            return
        await self._recurring.reconcile(owner)

    async def forget(self, body: Body) -> None:
        """Record the deletion (the row stays: PostgreSQL keeps the history)."""
        meta = ObjectMeta.of(body)
        owner = (body.get("spec") or {}).get("owner", "")
        event = Event(
            type="task.deleted", subject=meta.subject, partition_key=owner, key=f"task.deleted:{meta.uid}"
        )
        await self._records.mark_deleted(table="tasks", uid=meta.uid, at=self._clock.now(), events=[event])
        if self._reminders is not None:
            # The task is going: its pending reminders must not fire (they end Cancelled).
            try:
                spec = resources.TaskSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                spec = None
            if spec is not None:
                await self._reminders.sync_task(body, spec)
        # A deleted current occurrence is a skip (F24): the series moves on now, not at its next change.
        await self._advance_series(body, only_if_current=True)

    async def _reject(
        self, body: Body, *, meta: ObjectMeta, status: resources.TaskStatus, message: str, now: datetime
    ) -> None:
        rejected = observed(status, meta=meta, ready=False, reason="InvalidSpec", message=message, now=now)
        await self._kube.patch_status(
            crds.TASK, namespace=meta.namespace, name=meta.name, status=status_wire(rejected)
        )
        self._events.warning(body, reason="InvalidSpec", message=message)


def _rule_changed(read: Body, fresh: Body) -> bool:
    """Whether the edit between two versions changes when occurrences fall due (a title edit does not)."""
    before, after = read.get("spec") or {}, fresh.get("spec") or {}
    return any(before.get(field) != after.get(field) for field in ("schedule", "anchor"))


class RecurringTaskReconciler:
    def __init__(
        self,
        *,
        kube: Kube,
        records: Records,
        clock: Clock,
        events: EventRecorder,
        engine: ScheduleEngine,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self._kube = kube
        self._records = records
        self._clock = clock
        self._events = events
        self._engine = engine
        self._metrics = metrics

    async def _timed[T](self, compute: Callable[[], T]) -> T:
        """Schedule arithmetic, timed, in the engine's threads: a costly rule must not stop the loop."""
        metrics = self._metrics
        return await self._engine.run(
            (lambda: metrics.time_next_occurrence(compute)) if metrics is not None else compute
        )

    async def reconcile(self, body: Body) -> None:
        meta = ObjectMeta.of(body)
        status = resources.RecurringTaskStatus.model_validate(body.get("status") or {})
        now = self._clock.now()
        try:
            spec = resources.RecurringTaskSpec.model_validate(body.get("spec") or {})
            schedule = await self._engine.compile(occurrences.schedule_spec(spec.schedule))
        except (ValidationError, recurrence.ScheduleError) as error:
            if isinstance(error, ValidationError):
                message = resources.describe_validation_error(error)
            else:
                message = f"spec.schedule: {error}"
            await self._reject(body, meta=meta, status=status, message=message, now=now)
            raise InvalidSpec(message) from error

        advanced = await self._advance(body, meta=meta, spec=spec, schedule=schedule, status=status)
        if advanced.phase == "Ended" and status.phase != "Ended":
            self._events.normal(body, reason="Ended", message="the schedule has no further occurrences")
        elif advanced.current_task != status.current_task and advanced.current_task is not None:
            self._events.normal(
                body,
                reason="OccurrenceCreated",
                message=(
                    f"occurrence {advanced.occurrences} {advanced.current_task} due {advanced.next_due_at}"
                ),
            )
        if advanced.occurrences - 1 > spec.history_limit:
            # Until then there are no more completed occurrences than history keeps (and no list).
            await self._prune_history(meta=meta, spec=spec, current_task=advanced.current_task)

        reason = {"Active": "Scheduled", "Suspended": "Suspended", "Ended": "Ended"}[
            advanced.phase or "Active"
        ]
        message = {
            "Scheduled": f"next occurrence due {advanced.next_due_at}",
            "Suspended": "suspended: no new occurrences are created",
            "Ended": "the schedule has ended",
        }[reason]
        new_status = observed(
            advanced, meta=meta, ready=True, reason=reason, message=message, now=now, rule=schedule.rule_text
        )
        data = {
            "title": spec.task_template.title,
            "owner": spec.task_template.owner,
            "rule": schedule.rule_text,
            "phase": new_status.phase,
            "currentTask": new_status.current_task,
            "nextDueAt": new_status.next_due_at.isoformat() if new_status.next_due_at else None,
        }
        events = _lifecycle_events(
            prefix="recurringtask",
            meta=meta,
            owner=spec.task_template.owner,
            observed_generation=status.observed_generation,
            data=data,
        )
        if new_status.phase == "Ended" and status.phase != "Ended":
            events.append(
                Event(
                    type="recurringtask.ended",
                    subject=meta.subject,
                    partition_key=spec.task_template.owner,
                    key=f"recurringtask.ended:{meta.uid}",
                    data=data,
                )
            )
        await self._records.save_recurring_task(
            RecurringTaskRow(
                uid=meta.uid,
                namespace=meta.namespace,
                name=meta.name,
                owner=spec.task_template.owner,
                title=spec.task_template.title,
                rule=schedule.rule_text,
                time_zone=spec.schedule.time_zone,
                anchor=spec.anchor,
                phase=new_status.phase or "Active",
                current_task=new_status.current_task,
                next_due_at=new_status.next_due_at,
                occurrences=new_status.occurrences,
                last_completed_at=new_status.last_completed_at,
                generation=meta.generation,
                spec=spec.to_wire(),
                status=new_status.to_wire(),
                created_at=meta.created_at,
                updated_at=now,
            ),
            events=events,
        )
        await self._write_status(body, meta=meta, status=new_status, created=advanced.current_task)

    async def _write_status(
        self, body: Body, *, meta: ObjectMeta, status: resources.RecurringTaskStatus, created: str | None
    ) -> None:
        """Write the status; after creating an occurrence, only over the version it was computed from.

        A completion advances the schedule from the Task's handler with the RecurringTask as it
        read it. If the spec was edited meanwhile (F17), the edit's own reconcile made the next
        occurrence by the new rule: this stale run must not write its status over that one, and
        the occurrence it made by the old rule must go. A version that changed for any other
        reason (another status write) only means: look again.
        """
        previous = (body.get("status") or {}).get("currentTask")
        if created is None or created == previous:
            await self._kube.patch_status(
                crds.RECURRING_TASK, namespace=meta.namespace, name=meta.name, status=status_wire(status)
            )
            return
        try:
            await self._kube.patch_status(
                crds.RECURRING_TASK,
                namespace=meta.namespace,
                name=meta.name,
                status=status_wire(status),
                resource_version=body["metadata"].get("resourceVersion"),
            )
        except Conflict as error:
            fresh = await self._kube.get(crds.RECURRING_TASK, namespace=meta.namespace, name=meta.name)
            fresh_current = ((fresh or {}).get("status") or {}).get("currentTask")
            if fresh is None or (fresh_current != created and _rule_changed(body, fresh)):
                # Made by a rule that is no longer the spec: it must not stay open beside the current one.
                logger.info(
                    "%s: occurrence %s was made by an edited rule; removing it", meta.subject, created
                )
                with contextlib.suppress(NotFound):
                    await self._kube.delete(crds.TASK, namespace=meta.namespace, name=created)
            raise RetryLater(f"{meta.subject} changed while it was reconciled") from error

    async def _advance(
        self,
        body: Body,
        *,
        meta: ObjectMeta,
        spec: resources.RecurringTaskSpec,
        schedule: recurrence.Recurrence,
        status: resources.RecurringTaskStatus,
    ) -> resources.RecurringTaskStatus:
        """Make sure the current occurrence exists and is open; return the status that follows."""
        if status.phase == "Ended" and status.observed_generation == meta.generation:
            return status  # an edited spec (e.g. a later 'until') is looked at again
        if spec.suspend:
            return status.model_copy(update={"phase": "Suspended"})
        active = status.model_copy(update={"phase": "Active"})

        if status.current_task is None:
            # The creation instant, not "now": a retry must compute the same first slot.
            due = await self._timed(lambda: occurrences.first_due(schedule, created_at=meta.created_at))
            if due is None:
                return status.model_copy(update={"phase": "Ended", "next_due_at": None})
            name = await self._ensure_occurrence(body, spec=spec, due_at=due, index=1, status=status)
            return active.model_copy(update={"current_task": name, "next_due_at": due, "occurrences": 1})

        current = await self._kube.get(crds.TASK, namespace=meta.namespace, name=status.current_task)
        skipped = current is None or bool(current["metadata"].get("deletionTimestamp"))
        if current is not None and not skipped and not (current.get("spec") or {}).get("completed"):
            return active  # the current occurrence is still open: nothing to do
        if current is None or skipped:
            # The current occurrence was deleted by someone (F24): a skip. The series moves on
            # from its due time, or from now if that has passed, and nothing is recorded as done.
            previous_due = status.next_due_at or meta.created_at
            moved_on_at = max(previous_due, self._clock.now())
            last_completed_at = status.last_completed_at
        else:
            previous_due = datetime.fromisoformat(current["spec"]["dueAt"].replace("Z", "+00:00"))
            try:
                moved_on_at = await self._records.completion_instant(task_uid=current["metadata"]["uid"])
            except RecordNotFound as error:
                raise RetryLater(str(error)) from error
            last_completed_at = moved_on_at

        due = await self._timed(
            lambda: recurrence.next_due(
                schedule,
                anchor=spec.anchor,
                previous_due=previous_due,
                completed_at=moved_on_at,
                occurrences_so_far=status.occurrences,
            )
        )
        finished = active.model_copy(update={"last_completed_at": last_completed_at})
        if due is None:
            return finished.model_copy(update={"phase": "Ended", "next_due_at": None})
        index = status.occurrences + 1
        name = await self._ensure_occurrence(body, spec=spec, due_at=due, index=index, status=status)
        return finished.model_copy(update={"current_task": name, "next_due_at": due, "occurrences": index})

    async def _ensure_occurrence(
        self,
        body: Body,
        *,
        spec: resources.RecurringTaskSpec,
        due_at: datetime,
        index: int,
        status: resources.RecurringTaskStatus,
    ) -> str:
        """Create occurrence ``index`` unless it exists already (found by its name, or its labels).

        Its name follows from the spec and the durable record, so an attempt that runs again
        after a crash computes the same name and finds it (AlreadyExists). Only an edit of the
        spec since the last reconcile can change the name an earlier attempt used: then the
        occurrence is looked up by its labels. That list costs the API server a scan of the
        namespace, so it is not done for every occurrence (benchmarks/operator_scale.py).
        """
        meta = ObjectMeta.of(body)
        edited = meta.generation != (status.observed_generation or 1)
        if edited:
            existing = await self._kube.list(
                crds.TASK,
                namespace=meta.namespace,
                labels=objects.occurrence_labels(recurring_task_uid=meta.uid, index=index),
            )
            if existing:
                found_name: str = existing[0]["metadata"]["name"]
                return found_name
        manifest = objects.occurrence_task(recurring_task=body, spec=spec, due_at=due_at, index=index)
        name: str = manifest["metadata"]["name"]
        try:
            await self._kube.create(crds.TASK, manifest)
        except AlreadyExists:
            found = await self._kube.get(crds.TASK, namespace=meta.namespace, name=name)
            controller = objects.controller_of(found or {}, kind="RecurringTask")
            if controller is None or controller.get("uid") != meta.uid:
                raise InvalidSpec(
                    f"a Task named {name!r} already exists and is not an occurrence of this RecurringTask"
                ) from None
        logger.info("occurrence %s of %s due %s", index, meta.subject, due_at.isoformat())
        return name

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
        self._events.warning(body, reason="InvalidSchedule", message=message)
