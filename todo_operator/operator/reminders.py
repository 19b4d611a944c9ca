"""Reminders: the objects a Task's ``spec.reminders`` makes, and how each gets delivered.

Three delivery modes (operator setting ``reminder_delivery``):

* ``cronjob`` (default): each pending Reminder owns a one-shot ``batch/v1``
  CronJob for its minute (UTC) whose pod runs ``todo-operator notify``; it
  keeps firing while the operator is down. A reminder whose minute has
  already passed gets a Job that runs at once.
* ``inline``: the operator's scheduler (``due_work.py``) sends due
  reminders itself from PostgreSQL.
* ``dapr-jobs``: each pending Reminder has a one-shot job on the Dapr
  Scheduler, which calls the operator back at its moment (``job_triggers.py``).

Either way the send goes through :class:`.delivery.ReminderDelivery`, which
sends each reminder once. Completing or deleting the task cancels its
pending reminders (phase ``Cancelled``, CronJob or Dapr job deleted).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import pathlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import yaml
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from todo_operator.channels.delivery import Outcome
from todo_operator.clock import Clock
from todo_operator.domain import crds, lifecycle, resources, timing
from todo_operator.domain.events import Event
from todo_operator.kube import AlreadyExists, Body, Kube, TransientKubeError, owners
from todo_operator.operator import objects
from todo_operator.operator.claims import take_up_record
from todo_operator.operator.job_triggers import DaprJobTrigger
from todo_operator.operator.reconciling import ClusterEventRecorder, ObjectMeta, observed, status_wire
from todo_operator.store import reminder_rows
from todo_operator.store.claims import RecordClaims

logger = logging.getLogger(__name__)

# Seconds between tries to write a delivery's outcome to the Reminder's status (about a minute in all).
REPORT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)

Delivery = Literal["cronjob", "inline", "dapr-jobs"]


@dataclass(frozen=True, kw_only=True)
class NotifyJob:
    """How the pods of reminder CronJobs and Jobs run ``todo-operator notify``."""

    image: str = "ghcr.io/todo-operator/todo-operator:latest"
    # Where the CronJobs and Jobs run: the reminder's own namespace (None), or one namespace
    # (the operator's, as the Helm chart does), so that the notify ServiceAccount and its
    # Secret exist once and batch permissions stay in one place.
    namespace: str | None = None
    service_account: str = "todo-operator-notify"
    secret: str = "todo-operator-notify"  # noqa: S105  # a Secret's name: it holds the pod's TODO_* settings
    starting_deadline_seconds: int = 300
    active_deadline_seconds: int = 1800  # 10 retries from 1 s to 512 s fit in ~17 minutes
    # A batch/v1 JobTemplateSpec (metadata + spec) owned by the deployment (the Helm chart
    # renders one): security settings, Secrets, resources and the labels NetworkPolicies
    # select stay there; the operator fills in only the image and the arguments.
    template: dict[str, Any] | None = None


def load_job_template(path: str) -> dict[str, Any]:
    """Read a JobTemplateSpec file (``TODO_NOTIFY_JOB_TEMPLATE``), checking the one part we rely on."""
    template = yaml.safe_load(pathlib.Path(path).read_text())
    containers = (
        (((template or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("containers")
    )
    if not isinstance(containers, list) or not containers:
        raise ValueError(f"{path}: not a JobTemplateSpec with spec.template.spec.containers")
    loaded: dict[str, Any] = template
    return loaded


def _job_spec(*, namespace: str, name: str, job: NotifyJob) -> dict[str, Any]:
    if job.template is not None:
        spec: dict[str, Any] = copy.deepcopy(job.template["spec"])
        container = spec["template"]["spec"]["containers"][0]
        container["image"] = job.image
        container["args"] = ["notify", "--reminder", f"{namespace}/{name}"]
        return spec
    return {
        "backoffLimit": 0,  # notify retries by itself, counting attempts in PostgreSQL
        "activeDeadlineSeconds": job.active_deadline_seconds,
        "ttlSecondsAfterFinished": 3600,
        "template": {
            "metadata": {"labels": {objects.LABEL_MANAGED_BY: objects.MANAGER, "todo.dev/reminder": name}},
            "spec": {
                "serviceAccountName": job.service_account,
                "restartPolicy": "Never",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "notify",
                        "image": job.image,
                        "args": ["notify", "--reminder", f"{namespace}/{name}"],
                        "envFrom": [{"secretRef": {"name": job.secret}}],
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "64Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": {
                            "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
    }


def trigger_namespace(reminder: Body, job: NotifyJob) -> str:
    namespace: str = job.namespace or reminder["metadata"]["namespace"]
    return namespace


def trigger_name(
    reminder: Body, job: NotifyJob, *, suffix: str = "mail", limit: int = timing.MAX_CRONJOB_NAME_LENGTH
) -> str:
    meta = reminder["metadata"]
    # In a shared namespace the reminder's namespace is part of the name, so names never collide.
    base = meta["name"] if job.namespace is None else f"{meta['namespace']}-{meta['name']}"
    return timing.bounded_name(base, suffix, limit=limit)


def _owned_by(reminder: Body, job: NotifyJob) -> list[dict[str, Any]]:
    # Owner references cannot cross namespaces: in a shared namespace, the Reminder's
    # finalizer (cancel on delete) removes its CronJob instead of the garbage collector.
    if job.namespace not in (None, reminder["metadata"]["namespace"]):
        return []
    return [owners.controller_reference(reminder, kind="Reminder")]


def _trigger_labels(reminder: Body) -> dict[str, str]:
    meta = reminder["metadata"]
    return {
        objects.LABEL_MANAGED_BY: objects.MANAGER,
        "todo.dev/reminder": meta["name"][:63],
        "todo.dev/reminder-namespace": meta["namespace"],
    }


def cronjob(*, reminder: Body, fire_at: datetime, job: NotifyJob) -> dict[str, Any]:
    """The one-shot CronJob of a reminder: its minute in UTC, never two runs at once."""
    meta = reminder["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": trigger_name(reminder, job),
            "namespace": trigger_namespace(reminder, job),
            "labels": _trigger_labels(reminder),
            "ownerReferences": _owned_by(reminder, job),
        },
        "spec": {
            "schedule": timing.cron_schedule(fire_at),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": job.starting_deadline_seconds,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": _job_spec(namespace=meta["namespace"], name=meta["name"], job=job)},
        },
    }


def immediate_job(*, reminder: Body, job: NotifyJob, now: datetime) -> dict[str, Any]:
    """A Job that sends a reminder whose minute has already passed.

    Named after the minute it is made in: a retry within that minute finds it, a
    later catch-up or an admin's retry gets a new one (sending stays once: the row lock).
    """
    meta = reminder["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": trigger_name(reminder, job, suffix=f"mail-{now.astimezone(UTC):%m%d%H%M}", limit=63),
            "namespace": trigger_namespace(reminder, job),
            "labels": _trigger_labels(reminder),
            "ownerReferences": _owned_by(reminder, job),
        },
        "spec": _job_spec(namespace=meta["namespace"], name=meta["name"], job=job),
    }


def reminder_object(*, task: Body, entry: resources.ReminderOffset) -> dict[str, Any]:
    """The Reminder a Task's ``spec.reminders`` entry makes, owned by the Task."""
    meta = task["metadata"]
    spec: dict[str, Any] = {"taskRef": {"name": meta["name"]}, "channel": "email", **entry.to_wire()}
    return {
        "apiVersion": resources.API_VERSION,
        "kind": "Reminder",
        "metadata": {
            "name": timing.reminder_name(meta["name"], entry),
            "namespace": meta["namespace"],
            "labels": {objects.LABEL_MANAGED_BY: objects.MANAGER, "todo.dev/task-uid": meta["uid"]},
            "ownerReferences": [owners.controller_reference(task, kind="Task")],
        },
        "spec": spec,
    }


class ReminderReconciler:
    def __init__(
        self,
        *,
        kube: Kube,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clock: Clock,
        cluster_events: ClusterEventRecorder,
        delivery: Delivery,
        job: NotifyJob,
        catch_up: timing.CatchUpPolicy,
        wake_dispatcher: Callable[[], None] = lambda: None,
        dapr_jobs: DaprJobTrigger | None = None,
    ) -> None:
        if (delivery == "dapr-jobs") != (dapr_jobs is not None):
            raise ValueError("dapr-jobs delivery, and it only, needs the Dapr jobs client")
        self._dapr_jobs = dapr_jobs
        self._kube = kube
        self._pool = pool
        self._clock = clock
        self._cluster_events = cluster_events
        self._delivery = delivery
        self._job = job
        self._catch_up = catch_up
        self._wake_dispatcher = wake_dispatcher

    # ------------------------------------------------------------------ a Task's reminders

    async def sync_task(self, task: Body, spec: resources.TaskSpec) -> None:
        """Make the Task's Reminders match ``spec.reminders``; re-time or cancel all of its reminders."""
        meta = task["metadata"]
        namespace = meta["namespace"]
        wanted = {timing.reminder_name(meta["name"], entry): entry for entry in spec.reminders}
        owned = await self._kube.list(
            crds.REMINDER, namespace=namespace, labels={"todo.dev/task-uid": meta["uid"]}
        )
        for reminder in owned:
            if reminder["metadata"]["name"] not in wanted:
                await self._kube.delete(crds.REMINDER, namespace=namespace, name=reminder["metadata"]["name"])
        existing = {reminder["metadata"]["name"] for reminder in owned}
        for name, entry in wanted.items():
            if name not in existing:
                with contextlib.suppress(AlreadyExists):  # created by an earlier run of this handler
                    await self._kube.create(crds.REMINDER, reminder_object(task=task, entry=entry))
        # Every recorded reminder of this task (ours and those people made) follows its dueAt
        # and completion. Found in PostgreSQL, not by listing the namespace's Reminders: that
        # would cost every task reconcile a scan of all reminders. One not recorded yet is
        # reconciled by its own create handler, which reads the task as it is then.
        async with self._pool.connection() as connection:
            rows = reminder_rows.ReminderRows(connection)
            recorded = await rows.names_for_task(namespace=namespace, task_uid=meta["uid"])
        for name in sorted(set(recorded) | set(wanted)):
            found = await self._kube.get(crds.REMINDER, namespace=namespace, name=name)
            if found is not None and (found.get("spec") or {}).get("taskRef", {}).get("name") == meta["name"]:
                await self.reconcile(found, task=task)

    # ------------------------------------------------------------------ one Reminder

    async def reconcile(self, body: Body, *, task: Body | None = None) -> None:
        """Observe the Reminder and its Task, let ``domain.lifecycle`` decide, carry it out."""
        if body["metadata"].get("deletionTimestamp"):
            return  # being deleted: forget() handles it
        meta = ObjectMeta.of(body)
        status = resources.ReminderStatus.model_validate(body.get("status") or {})
        try:
            spec = resources.ReminderSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            message = resources.describe_validation_error(error)
            await self._fail(body, meta=meta, status=status, reason="InvalidSpec", message=message)
            return
        if status.observed_generation is None:
            if (taken := await self._taken_up(body, spec, status)) is None:
                return  # another object holds the name now
            status = taken
        if status.phase in ("Sent", "Failed", "Cancelled") and status.observed_generation == meta.generation:
            async with self._pool.connection() as connection:
                rows = reminder_rows.ReminderRows(connection)
                row = await rows.find(namespace=meta.namespace, name=meta.name)
            if lifecycle.reminder_settled(
                status, generation=meta.generation, row_phase=row.phase if row else None
            ):
                await self._remove_trigger(body)
                return

        task = task or await self._kube.get(crds.TASK, namespace=meta.namespace, name=spec.task_ref.name)
        observed_task, task_spec = _observe_task(task)
        now = self._clock.now()
        step = lifecycle.decide_reminder(spec, task=observed_task, now=now, policy=self._catch_up)
        if step.action == "fail":
            await self._fail(body, meta=meta, status=status, reason=step.reason, message=step.message)
        elif step.action == "wait":
            waiting = observed(
                status, meta=meta, ready=False, reason=step.reason, message=step.message, now=now
            )
            await self._kube.patch_status(
                crds.REMINDER, namespace=meta.namespace, name=meta.name, status=status_wire(waiting)
            )
            if not any(c.type == "Ready" and c.reason == step.reason for c in status.conditions):
                self._cluster_events.warning(body, reason=step.reason, message=step.message)
        elif step.action == "cancel":
            if task is not None and task_spec is not None:
                await self._record_if_new(
                    body, meta=meta, spec=spec, task=task, task_spec=task_spec, reason=step.reason
                )
            await self.cancel(body, reason=step.reason)
        else:
            # decide_reminder schedules only for an open Task, observed with its spec.
            assert task is not None
            assert task_spec is not None
            await self._schedule(
                body, meta=meta, spec=spec, status=status, task=task, task_spec=task_spec, step=step
            )

    async def _taken_up(
        self, body: Body, spec: resources.ReminderSpec, status: resources.ReminderStatus
    ) -> resources.ReminderStatus | None:
        """The moment last recorded for this Reminder's name, if PostgreSQL has it; None if
        another object holds the name now.

        A reminder that takes up its record (``operator/claims.py``) goes on from its row: one
        sent or failed stays so (the row is terminal: scheduling it again writes that back), one
        waiting keeps its moment, so ``reminder.scheduled`` is not told again.
        """
        taken = await take_up_record(
            body,
            kind=crds.REMINDER,
            table="reminders",
            kube=self._kube,
            claims=RecordClaims(self._pool),
            cluster_events=self._cluster_events,
            spec=spec,
        )
        if taken is None:
            return None  # another object holds the name now
        row = taken.row
        if row is None:
            return status
        async with self._pool.connection() as connection:
            state = await reminder_rows.ReminderRows(connection).find(
                namespace=body["metadata"]["namespace"], name=body["metadata"]["name"]
            )
        if state is None:
            return status
        return status.model_copy(update={"fire_at": state.fire_at, "attempts": state.attempts})

    async def _schedule(
        self,
        body: Body,
        *,
        meta: ObjectMeta,
        spec: resources.ReminderSpec,
        status: resources.ReminderStatus,
        task: Body,
        task_spec: resources.TaskSpec,
        step: lifecycle.ReminderStep,
    ) -> None:
        """Record the reminder's moment; then do what its row, as PostgreSQL kept it, says."""
        fire = step.fire_at
        assert fire is not None
        now = self._clock.now()
        recorded, row = await self._record_schedule(
            meta, spec=spec, status=status, task=task, task_spec=task_spec, step=step, fire=fire, now=now
        )
        if recorded == "gone":
            return  # deleted meanwhile: forget() has it
        if recorded == "terminal" and row is not None:
            await self._write_terminal(body, meta=meta, status=status, row=row)
            await self._remove_trigger(body)
            return
        if recorded == "cancelled":
            # Cancelled since this reconcile read its task (completed or deleted meanwhile, seen
            # by another replica first): the row kept it so, and so does the object.
            await self.cancel(
                body, reason="the task was completed or deleted while this reminder was scheduled"
            )
            return

        cron_name = dapr_job = None
        if self._delivery == "cronjob":
            assert step.timing is not None
            cron_name = await self._ensure_trigger(body, fire=fire, decision=step.timing)
        elif self._dapr_jobs is not None:
            dapr_job = await self._dapr_jobs.ensure(body, fire=fire, previous=status.dapr_job)
        else:
            self._wake_dispatcher()
        new_status = observed(
            status,
            meta=meta,
            ready=True,
            reason="Pending" if self._delivery == "inline" else "Scheduled",
            message=f"fires at {fire.isoformat()} ({self._delivery} delivery)",
            now=now,
            phase=self._waiting_phase,
            fire_at=fire,
            cron_job=cron_name,
            dapr_job=dapr_job,
            attempts=row.attempts if row else 0,
        )
        await self._kube.patch_status(
            crds.REMINDER, namespace=meta.namespace, name=meta.name, status=status_wire(new_status)
        )
        if status.fire_at != fire:
            self._cluster_events.normal(body, reason="Scheduled", message=f"fires at {fire.isoformat()}")

    @property
    def _waiting_phase(self) -> resources.ReminderPhase:
        """A reminder waiting for its moment: Pending inline, Scheduled with a trigger outside."""
        return "Pending" if self._delivery == "inline" else "Scheduled"

    async def _record_schedule(
        self,
        meta: ObjectMeta,
        *,
        spec: resources.ReminderSpec,
        status: resources.ReminderStatus,
        task: Body,
        task_spec: resources.TaskSpec,
        step: lifecycle.ReminderStep,
        fire: datetime,
        now: datetime,
    ) -> tuple[lifecycle.Recorded, reminder_rows.ReminderState | None]:
        """Save the row (and ``reminder.scheduled`` when the moment is new); what was kept, and the row."""
        events = []
        if status.fire_at != fire:
            events.append(
                Event(
                    type="reminder.scheduled",
                    subject=meta.subject,
                    partition_key=task_spec.owner,
                    key=f"reminder.scheduled:{meta.uid}:{fire.isoformat()}",
                    data={"task": spec.task_ref.name, "fireAt": fire.isoformat(), "delivery": self._delivery},
                )
            )
        row = self._row(
            meta, spec=spec, task=task, task_spec=task_spec, fire=fire, phase=self._waiting_phase, now=now
        )
        async with self._pool.connection() as connection:
            rows = reminder_rows.ReminderRows(connection)
            stored_phase = await rows.save(row, events=events)
            recorded = lifecycle.after_recording(
                step, stored_phase=stored_phase, triggered_outside=self._delivery != "inline"
            )
            if recorded == "missed":
                await self._missed(rows, meta=meta, spec=spec, owner=task_spec.owner, fire=fire, now=now)
                recorded = "terminal"
            return recorded, await rows.find(namespace=meta.namespace, name=meta.name)

    def _row(
        self,
        meta: ObjectMeta,
        *,
        spec: resources.ReminderSpec,
        task: Body,
        task_spec: resources.TaskSpec,
        fire: datetime | None,
        phase: str,
        now: datetime,
    ) -> reminder_rows.ReminderWrite:
        return reminder_rows.ReminderWrite(
            uid=meta.uid,
            namespace=meta.namespace,
            name=meta.name,
            task_uid=task["metadata"]["uid"],
            task_name=spec.task_ref.name,
            task_title=task_spec.title,
            task_due_at=task_spec.due_at,
            time_zone=(task["metadata"].get("annotations") or {}).get(objects.ANNOTATION_TIME_ZONE, "UTC"),
            owner=task_spec.owner,
            recipient=spec.to or task_spec.owner,
            message=spec.message,
            fire_at=fire,
            phase=phase,
            delivery=self._delivery,
            generation=meta.generation,
            spec=spec.to_wire(),
            created_at=meta.created_at,
            updated_at=now,
        )

    async def _record_if_new(
        self,
        body: Body,
        *,
        meta: ObjectMeta,
        spec: resources.ReminderSpec,
        task: Body,
        task_spec: resources.TaskSpec,
        reason: str,
    ) -> None:
        """A reminder made for a Task already completed (or going) is recorded, as Cancelled.

        Never recorded as pending first: a dispatcher could claim it in between. Its object
        and its row then agree, and consumers hear of it once, as cancelled.
        """
        try:
            fire: datetime | None = timing.fire_at(spec, due_at=task_spec.due_at)
        except timing.ReminderError:
            fire = None
        cancelled = Event(
            type="reminder.cancelled",
            subject=meta.subject,
            partition_key=task_spec.owner,
            key=f"reminder.cancelled:{meta.uid}",
            data={"reason": reason},
        )
        row = self._row(
            meta,
            spec=spec,
            task=task,
            task_spec=task_spec,
            fire=fire,
            phase="Cancelled",
            now=self._clock.now(),
        )
        async with self._pool.connection() as connection:
            rows = reminder_rows.ReminderRows(connection)
            if await rows.find(namespace=meta.namespace, name=meta.name) is None:
                await rows.save(row, events=[cancelled])

    async def _missed(
        self,
        rows: reminder_rows.ReminderRows,
        *,
        meta: ObjectMeta,
        spec: resources.ReminderSpec,
        owner: str,
        fire: datetime,
        now: datetime,
    ) -> None:
        """Too late to be worth an e-mail (the catch-up policy's look-back): it ends Failed."""
        missed = f"missed: due {fire.isoformat()}, more than {self._catch_up.look_back} ago"
        failed = Event(
            type="reminder.failed",
            subject=meta.subject,
            partition_key=owner,
            key=f"reminder.failed:{meta.uid}",
            data={"task": spec.task_ref.name, "fireAt": fire.isoformat(), "reason": "Missed"},
        )
        await rows.set_phase(
            uid=meta.uid, phase="Failed", at=now, error=missed, reason="Missed", events=[failed]
        )

    async def _ensure_trigger(self, body: Body, *, fire: datetime, decision: timing.Decision) -> str | None:
        if decision in ("send", "send-late"):
            manifest = immediate_job(reminder=body, job=self._job, now=self._clock.now())
        else:
            manifest = cronjob(reminder=body, fire_at=fire, job=self._job)
        name: str = manifest["metadata"]["name"]
        namespace: str = manifest["metadata"]["namespace"]
        existing = await self._kube.get_builtin("batch/v1", manifest["kind"], namespace=namespace, name=name)
        if existing is None:
            with contextlib.suppress(AlreadyExists):
                await self._kube.create_builtin(manifest)
        elif (
            manifest["kind"] == "CronJob" and existing["spec"].get("schedule") != manifest["spec"]["schedule"]
        ):
            await self._kube.patch_builtin(
                "batch/v1",
                "CronJob",
                namespace=namespace,
                name=name,
                patch={"spec": {"schedule": manifest["spec"]["schedule"]}},
            )
        return name

    async def _remove_trigger(self, body: Body) -> None:
        """The reminder is done or cancelled: its CronJob (whatever the mode: one may be left from an
        earlier mode) and its Dapr job go."""
        await self._kube.delete_builtin(
            "batch/v1",
            "CronJob",
            namespace=trigger_namespace(body, self._job),
            name=trigger_name(body, self._job),
        )
        if self._dapr_jobs is not None:
            await self._dapr_jobs.remove(body, current=(body.get("status") or {}).get("daprJob"))

    async def cancel(self, body: Body, *, reason: str) -> None:
        """Cancel a pending reminder: its CronJob goes, it ends ``Cancelled`` (a sent one stays Sent)."""
        meta = ObjectMeta.of(body)
        status = resources.ReminderStatus.model_validate(body.get("status") or {})
        now = self._clock.now()
        async with self._pool.connection() as connection:
            rows = reminder_rows.ReminderRows(connection)
            row = await rows.find(namespace=meta.namespace, name=meta.name)
            if row is not None:  # a reminder never recorded has nothing to cancel in PostgreSQL
                event = Event(
                    type="reminder.cancelled",
                    subject=meta.subject,
                    partition_key=row.owner,  # the task's owner, like every event of that user
                    key=f"reminder.cancelled:{meta.uid}",
                    data={"reason": reason},
                )
                await rows.set_phase(uid=meta.uid, phase="Cancelled", at=now, events=[event])
                row = await rows.find(namespace=meta.namespace, name=meta.name)
        await self._remove_trigger(body)
        if row is not None and row.phase in ("Sent", "Failed"):
            await self._write_terminal(body, meta=meta, status=status, row=row)
            return
        cancelled = observed(
            status,
            meta=meta,
            ready=True,
            reason="Cancelled",
            message=reason,
            now=now,
            phase="Cancelled",
            cron_job=None,
            dapr_job=None,
        )
        await self._kube.patch_status(
            crds.REMINDER, namespace=meta.namespace, name=meta.name, status=status_wire(cancelled)
        )
        if status.phase != "Cancelled":
            self._cluster_events.normal(body, reason="Cancelled", message=reason)

    async def report(self, *, namespace: str, name: str, outcome: Outcome) -> None:
        """Show a delivery's outcome in the Reminder's status (and end its CronJob or Dapr job)."""
        body = await self._kube.get(crds.REMINDER, namespace=namespace, name=name)
        if body is None or outcome.result == "Skipped":
            return
        meta = ObjectMeta.of(body)
        status = resources.ReminderStatus.model_validate(body.get("status") or {})
        async with self._pool.connection() as connection:
            rows = reminder_rows.ReminderRows(connection)
            row = await rows.find(namespace=namespace, name=name)
        if row is not None:
            await self._write_terminal(body, meta=meta, status=status, row=row)
        await self._remove_trigger(body)

    async def _write_terminal(
        self,
        body: Body,
        *,
        meta: ObjectMeta,
        status: resources.ReminderStatus,
        row: reminder_rows.ReminderState,
    ) -> None:
        sent = row.phase == "Sent"
        reason = ("SentLate" if row.late else "Sent") if sent else row.failure_reason or "DeliveryFailed"
        if sent:  # a Sent row has its sent_at (mark_sent writes both at once)
            message = f"sent at {row.sent_at.isoformat()}" if row.sent_at else "sent"
        else:
            message = row.last_error or "delivery failed"
        final = observed(
            status,
            meta=meta,
            ready=sent,
            reason=reason,
            message=message,
            now=self._clock.now(),
            phase=row.phase,
            fire_at=row.fire_at,
            sent_at=row.sent_at,
            attempts=row.attempts,
            last_error=row.last_error,
            cron_job=None,
            dapr_job=None,
        )
        await self._kube.patch_status(
            crds.REMINDER, namespace=meta.namespace, name=meta.name, status=status_wire(final)
        )
        if status.phase != row.phase:
            if sent:
                self._cluster_events.normal(body, reason=reason, message=message)
            else:
                self._cluster_events.warning(body, reason=reason, message=message)

    async def _fail(
        self, body: Body, *, meta: ObjectMeta, status: resources.ReminderStatus, reason: str, message: str
    ) -> None:
        """A reminder that cannot fire: ``Failed`` with a readable reason, never retried in a loop."""
        failed = observed(
            status,
            meta=meta,
            ready=False,
            reason=reason,
            message=message,
            now=self._clock.now(),
            phase="Failed",
            last_error=message,
        )
        await self._kube.patch_status(
            crds.REMINDER, namespace=meta.namespace, name=meta.name, status=status_wire(failed)
        )
        if status.phase != "Failed":
            self._cluster_events.warning(body, reason=reason, message=message)

    async def forget(self, body: Body) -> None:
        """The Reminder is being deleted: it must not fire any more, and its row is marked deleted."""
        await self.cancel(body, reason="ReminderDeleted")
        async with self._pool.connection() as connection:
            rows = reminder_rows.ReminderRows(connection)
            await rows.mark_deleted(uid=body["metadata"]["uid"], at=self._clock.now())


async def report_retrying(
    report: Callable[..., Awaitable[None]], *, namespace: str, name: str, outcome: Outcome
) -> None:
    """``report`` (:meth:`ReminderReconciler.report`), retrying a transient API error.

    The row is final by now, so no later look at this reminder would write a status lost here:
    it would show its waiting phase for good.
    """
    for delay in REPORT_RETRY_DELAYS:
        try:
            await report(namespace=namespace, name=name, outcome=outcome)
            return
        except TransientKubeError as error:
            logger.warning("reminder %s/%s: status not written (%s); retrying", namespace, name, error)
            await asyncio.sleep(delay)
    await report(namespace=namespace, name=name, outcome=outcome)


def _observe_task(task: Body | None) -> tuple[lifecycle.ReminderTask, resources.TaskSpec | None]:
    """A reminder's Task as ``decide_reminder`` sees it (and its spec, when valid)."""
    if task is None:
        return lifecycle.ReminderTask(state="missing"), None
    try:
        spec = resources.TaskSpec.model_validate(task.get("spec") or {})
    except ValidationError as error:
        # The operator refuses that Task (its own status says why); its reconcile brings it back here.
        return lifecycle.ReminderTask(
            state="invalid", problem=resources.describe_validation_error(error)
        ), None
    if spec.completed:
        return lifecycle.ReminderTask(state="completed", due_at=spec.due_at), spec
    if task["metadata"].get("deletionTimestamp"):
        return lifecycle.ReminderTask(state="deleting", due_at=spec.due_at), spec
    return lifecycle.ReminderTask(state="open", due_at=spec.due_at), spec
