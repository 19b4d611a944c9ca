"""Kopf handlers: parse the call, hand the object to a reconciler, translate errors.

All handlers are registered on one explicit registry built around the typed
:class:`Reconcilers` bundle (no module-level state, no loose ``memo`` bag).

Error policy: an invalid spec is permanent (reported in status and as an
Event, never retried — F16); anything transient (API server, database, a
dependency not recorded yet) is retried after ``retry_delay_seconds``;
anything else falls to Kopf's own retry with backoff.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kopf
import psycopg
from opentelemetry import context as otel_context

from todo_operator import kube
from todo_operator.domain import resources
from todo_operator.events import dapr
from todo_operator.operator import reconciling
from todo_operator.operator.reminders import ReminderReconciler
from todo_operator.operator.settings import OperatorSettings
from todo_operator.telemetry import tracing
from todo_operator.telemetry.metrics import OperatorMetrics

TASKS = (resources.GROUP, resources.VERSION, "tasks")
RECURRING_TASKS = (resources.GROUP, resources.VERSION, "recurringtasks")
REMINDERS = (resources.GROUP, resources.VERSION, "reminders")
FINALIZER = "todo.dev/finalizer"

# Kopf retries a failed API request after each of these waits (seconds), then gives up; a watch
# that gives up is not started again, so after an API server outage longer than the schedule
# (54 s with Kopf's own) the operator would run on serving nothing (F19). Here the waits never
# run out: after the schedule, one every API_RETRY_CAP_SECONDS for as long as the outage lasts.
API_RETRY_BACKOFFS: tuple[float, ...] = (1, 1, 2, 3, 5, 8, 13, 21)
API_RETRY_CAP_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class Reconcilers:
    """What the handlers need, built once by the composition root (``main.py``)."""

    tasks: reconciling.TaskReconciler
    recurring_tasks: reconciling.RecurringTaskReconciler
    reminders: ReminderReconciler
    metrics: OperatorMetrics | None = None


def _plain(body: Mapping[str, Any]) -> kube.Body:
    return dict(body.items())


async def _call(
    action: Callable[[kube.Body], Awaitable[None]],
    body: Mapping[str, Any],
    *,
    delay: float,
    kind: str,
    verb: str,
    metrics: OperatorMetrics | None,
    change: str | None = None,
    diff: kopf.Diff | None = None,
) -> None:
    started = time.perf_counter()
    reason = "unexpected"
    try:
        with tracing.tracer.start_as_current_span(
            f"{verb} {kind}",
            context=_traced_change(body, change=change, diff=diff),
            attributes={
                "todo.kind": kind,
                "k8s.namespace.name": str((body.get("metadata") or {}).get("namespace", "")),
                "todo.name": str((body.get("metadata") or {}).get("name", "")),
            },
        ):
            await action(_plain(body))
        reason = ""
    except reconciling.InvalidSpec as error:
        reason = "invalid_spec"
        raise kopf.PermanentError(str(error)) from error
    except (
        reconciling.RetryLater,
        kube.TransientKubeError,
        kube.Conflict,
        psycopg.OperationalError,
        # Two first upserts of one row at once (two replicas; a Task's handler and its
        # Reminder's) can collide on the live-name index: ON CONFLICT settles only the uid.
        # Once the other has committed, the retry finds the row and updates it (F4).
        psycopg.errors.UniqueViolation,
        # The Dapr Scheduler (dapr-jobs delivery) cannot be reached: the job is scheduled on a retry.
        dapr.SidecarUnavailable,
    ) as error:
        reason = "transient"
        raise kopf.TemporaryError(f"{type(error).__name__}: {error}", delay=delay) from error
    finally:
        if metrics is not None:
            metrics.reconcile_duration.labels(kind, verb).observe(time.perf_counter() - started)
            if reason:
                metrics.reconcile_errors.labels(kind, reason).inc()


def _traced_change(
    body: Mapping[str, Any], *, change: str | None, diff: kopf.Diff | None
) -> otel_context.Context | None:
    """The trace this handler call continues: the one that made the change, if it came with it.

    A create carries the trace of whoever created the object (the REST API, or the
    operator for an occurrence); an update only if it set the annotation itself.
    Otherwise (a resume, a kubectl edit) the call starts a trace of its own.
    """
    field = ("metadata", "annotations", tracing.TRACEPARENT_ANNOTATION)
    if change == "create" or (change == "update" and any(tuple(item[1]) == field for item in diff or ())):
        return tracing.context_from(tracing.annotation_of(body))
    return None


class EndlessBackoffs:
    """Kopf's ``networking.error_backoffs`` that never run out (an iterable with no length)."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain(API_RETRY_BACKOFFS, itertools.repeat(API_RETRY_CAP_SECONDS))


def configure_kopf(settings: kopf.OperatorSettings, operator_settings: OperatorSettings) -> None:
    # Progress and diff-base in annotations under our own prefix, nothing in status
    # (the status schema is ours and strict).
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="todo.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="todo.dev", key="last-handled-configuration"
    )
    # Without both timeouts a watch can stall silently on a half-dead connection.
    settings.watching.server_timeout = operator_settings.watch_server_timeout_seconds
    settings.watching.client_timeout = operator_settings.watch_server_timeout_seconds + 30
    settings.watching.connect_timeout = 30
    settings.networking.error_backoffs = EndlessBackoffs()
    settings.queueing.worker_limit = operator_settings.worker_limit
    settings.queueing.idle_timeout = operator_settings.worker_idle_seconds
    # Our own Events say what happened; Kopf's per-handler chatter stays in the log.
    settings.posting.level = logging.WARNING
    settings.peering.standalone = operator_settings.standalone
    settings.peering.mandatory = not operator_settings.standalone
    settings.peering.name = operator_settings.peering_name
    # A shard's replicas share one ClusterKopfPeering whatever namespaces it serves: Kopf's
    # per-namespace KopfPeering objects cannot be made ahead for namespaces matched by globs.
    settings.peering.clusterwide = (
        operator_settings.scope().whole_cluster or operator_settings.shard is not None
    )
    # Replicas of one Deployment share their settings: equal priorities would freeze them all.
    settings.peering.priority = (
        operator_settings.peering_priority
        if operator_settings.peering_priority is not None
        else secrets.randbelow(2**31 - 1)
    )


def build_registry(
    *,
    reconcilers: Reconcilers,
    settings: OperatorSettings,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    _register_process(registry, settings=settings, background=background)
    _register_resources(registry, reconcilers=reconcilers, settings=settings)
    return registry


def _register_process(
    registry: kopf.OperatorRegistry,
    *,
    settings: OperatorSettings,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]],
) -> None:
    """Kopf's settings, the background work started and stopped with Kopf, and the login."""
    running: list[asyncio.Task[None]] = []
    operator_settings = settings

    @kopf.on.startup(registry=registry)
    def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, operator_settings)

    @kopf.on.startup(registry=registry)
    async def _start_background(**_: Any) -> None:
        # Started and stopped with Kopf, in its event loop.
        running.extend(asyncio.create_task(work(), name=work.__qualname__) for work in background)

    @kopf.on.cleanup(registry=registry)
    async def _stop_background(**_: Any) -> None:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    if settings.kube_api_url:
        url = settings.kube_api_url

        @kopf.on.login(registry=registry)
        def _login(**_: Any) -> kopf.ConnectionInfo:
            # TLS verified as for any client: an https URL needs a certificate the system trusts.
            return kopf.ConnectionInfo(server=url)


def _register_resources(
    registry: kopf.OperatorRegistry, *, reconcilers: Reconcilers, settings: OperatorSettings
) -> None:
    """One reconcile (on resume, create, update) and one forget (on delete) per kind.

    Each handler's id is given, not derived from where it is defined: Kopf names its
    progress annotations after it (``todo.dev/reconcile_task``), and moving code must
    not rename what objects in a cluster carry.
    """
    call = functools.partial(_call, delay=settings.retry_delay_seconds, metrics=reconcilers.metrics)

    @kopf.on.resume(*RECURRING_TASKS, id="reconcile_recurring_task", registry=registry)
    @kopf.on.create(*RECURRING_TASKS, id="reconcile_recurring_task", registry=registry)
    @kopf.on.update(*RECURRING_TASKS, id="reconcile_recurring_task", registry=registry)
    async def reconcile_recurring_task(body: kopf.Body, reason: str, diff: kopf.Diff, **_: Any) -> None:
        await call(
            reconcilers.recurring_tasks.reconcile,
            body,
            kind="RecurringTask",
            verb="reconcile",
            change=reason,
            diff=diff,
        )

    @kopf.on.delete(*RECURRING_TASKS, id="forget_recurring_task", registry=registry)
    async def forget_recurring_task(body: kopf.Body, **_: Any) -> None:
        await call(reconcilers.recurring_tasks.forget, body, kind="RecurringTask", verb="delete")

    @kopf.on.resume(*TASKS, id="reconcile_task", registry=registry)
    @kopf.on.create(*TASKS, id="reconcile_task", registry=registry)
    @kopf.on.update(*TASKS, id="reconcile_task", registry=registry)
    async def reconcile_task(body: kopf.Body, reason: str, diff: kopf.Diff, **_: Any) -> None:
        await call(reconcilers.tasks.reconcile, body, kind="Task", verb="reconcile", change=reason, diff=diff)

    @kopf.on.delete(*TASKS, id="forget_task", registry=registry)
    async def forget_task(body: kopf.Body, **_: Any) -> None:
        await call(reconcilers.tasks.forget, body, kind="Task", verb="delete")

    @kopf.on.resume(*REMINDERS, id="reconcile_reminder", registry=registry)
    @kopf.on.create(*REMINDERS, id="reconcile_reminder", registry=registry)
    @kopf.on.update(*REMINDERS, id="reconcile_reminder", registry=registry)
    async def reconcile_reminder(body: kopf.Body, reason: str, diff: kopf.Diff, **_: Any) -> None:
        await call(
            reconcilers.reminders.reconcile, body, kind="Reminder", verb="reconcile", change=reason, diff=diff
        )

    @kopf.on.delete(*REMINDERS, id="forget_reminder", registry=registry)
    async def forget_reminder(body: kopf.Body, **_: Any) -> None:
        await call(reconcilers.reminders.forget, body, kind="Reminder", verb="delete")
