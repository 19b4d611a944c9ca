"""The composition root: settings in, a running operator out.

Everything the handlers use is built here, inside the operator's event loop
and before Kopf starts (Kopf cancels tasks created after it started when it
stops), and closed here when Kopf returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Final

import aiohttp
import kopf
from prometheus_client.registry import CollectorRegistry
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from todo_operator import kube
from todo_operator.channels import mail
from todo_operator.channels.delivery import ReminderDelivery
from todo_operator.clock import Clock, SystemClock
from todo_operator.domain import events as domain_events
from todo_operator.domain import recurrence
from todo_operator.domain.scope import NamespaceScope
from todo_operator.events import relay
from todo_operator.events.dapr_jobs import DaprJobs
from todo_operator.operator import handlers, reconciling
from todo_operator.operator.due_work import Doorbell, DueWork
from todo_operator.operator.job_triggers import DaprJobTrigger, JobTriggers
from todo_operator.operator.reminders import NotifyJob, ReminderReconciler, load_job_template, report_retrying
from todo_operator.operator.settings import OperatorSettings
from todo_operator.schedule_engine import ScheduleEngine
from todo_operator.store import pool as pools
from todo_operator.store import schema, stats, wakeups
from todo_operator.store.claims import RecordClaims
from todo_operator.store.records import Records
from todo_operator.telemetry import figures, metrics, server
from todo_operator.telemetry.settings import TelemetrySettings

TOPICS: Final = (
    domain_events.TOPIC_TASK_EVENTS,
    domain_events.TOPIC_REMINDERS,
    domain_events.TOPIC_TASK_UPDATES,
)
StopFlag = asyncio.Event | threading.Event | asyncio.Future[Any]


def open_pool(settings: OperatorSettings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    return pools.open_pool(settings.database_url, max_size=settings.database_pool_size)


async def _open_current(settings: OperatorSettings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """An open pool on a database whose schema is current."""
    # Refuse to start on an old schema rather than fail on every write later.
    await asyncio.to_thread(schema.require_current, settings.database_url)
    pool = open_pool(settings)
    await pool.open(wait=True, timeout=30)
    return pool


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Everything the operator runs: Kopf's handlers and the one loop of due work beside them."""

    reconcilers: handlers.Reconcilers
    due_work: DueWork  # one loop for overdue tasks, inline reminders and missed CronJobs
    cluster_events: (
        reconciling.ClusterEvents
    )  # Kubernetes Events (kubectl describe), posted in the background
    metrics: metrics.OperatorMetrics
    engine: ScheduleEngine
    job_triggers: JobTriggers | None = None  # dapr-jobs delivery: answers the sidecar's triggers


def build_delivery(
    *, settings: OperatorSettings, pool: AsyncConnectionPool[AsyncConnection[Any]], clock: Clock
) -> ReminderDelivery:
    smtp = settings.smtp()
    # Connections are kept open and reused: the inline dispatcher sends hundreds a second.
    connections = mail.SmtpPool(settings=smtp)
    return ReminderDelivery(
        pool=pool,
        clock=clock,
        send=connections.send,
        sender=smtp.sender,
        retry=settings.retry(),
        catch_up=settings.catch_up(),
        recipients=settings.recipients(),
        link_template=settings.task_link_template,
    )


def build_reminders(
    *,
    settings: OperatorSettings,
    kube_api: kube.Kube,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    clock: Clock,
    doorbell: Doorbell | None = None,
    cluster_events: reconciling.ClusterEventRecorder | None = None,
    dapr_jobs: DaprJobs | None = None,
) -> ReminderReconciler:
    return ReminderReconciler(
        kube=kube_api,
        pool=pool,
        clock=clock,
        cluster_events=cluster_events
        or reconciling.ClusterEvents(
            kube=kube_api, clock=clock, component="todo-operator", shard=settings.shard
        ),
        delivery=settings.reminder_delivery,
        job=NotifyJob(
            image=settings.notify_image,
            service_account=settings.notify_service_account,
            secret=settings.notify_secret,
            namespace=settings.notify_namespace,
            template=load_job_template(settings.notify_job_template)
            if settings.notify_job_template
            else None,
        ),
        catch_up=settings.catch_up(),
        wake_dispatcher=doorbell.ring if doorbell else lambda: None,
        dapr_jobs=DaprJobTrigger(
            dapr_jobs, clock=clock, catch_up=settings.catch_up(), retries=settings.job_retries()
        )
        if dapr_jobs is not None
        else None,
    )


def build_runtime(
    *,
    settings: OperatorSettings,
    kube_api: kube.Kube,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    clock: Clock,
    measured: metrics.OperatorMetrics | None = None,
    dapr_jobs: DaprJobs | None = None,
) -> Runtime:
    """The operator's parts, wired; ``dapr_jobs`` (the sidecar's Jobs API) with dapr-jobs delivery."""
    measured = measured or metrics.OperatorMetrics(metrics.new_registry())
    cluster_events = reconciling.ClusterEvents(
        kube=kube_api, clock=clock, component="todo-operator", shard=settings.shard
    )
    records, claims = Records(pool), RecordClaims(pool)
    doorbell = Doorbell()
    engine = ScheduleEngine(recurrence.Limits(min_spacing=settings.min_occurrence_spacing))
    recurring = reconciling.RecurringTaskReconciler(
        kube=kube_api,
        records=records,
        claims=claims,
        clock=clock,
        cluster_events=cluster_events,
        engine=engine,
        metrics=measured,
    )
    reminders = build_reminders(
        settings=settings,
        kube_api=kube_api,
        pool=pool,
        clock=clock,
        doorbell=doorbell,
        cluster_events=cluster_events,
        dapr_jobs=dapr_jobs,
    )
    tasks = reconciling.TaskReconciler(
        kube=kube_api,
        records=records,
        claims=claims,
        clock=clock,
        cluster_events=cluster_events,
        recurring=recurring,
        reminders=reminders,
    )
    delivery = build_delivery(settings=settings, pool=pool, clock=clock)
    due_work = DueWork(
        pool=pool,
        clock=clock,
        kube_api=kube_api,
        tasks=tasks,
        reminders=reminders,
        delivery=delivery,
        mode=settings.reminder_delivery,
        catch_up=settings.catch_up(),
        doorbell=doorbell,
        heartbeat=lambda now: measured.scheduler_last_run.set(now.timestamp()),
        scope=settings.scope(),
    )
    return Runtime(
        reconcilers=handlers.Reconcilers(
            recurring_tasks=recurring, tasks=tasks, reminders=reminders, metrics=measured
        ),
        due_work=due_work,
        cluster_events=cluster_events,
        metrics=measured,
        engine=engine,
        job_triggers=_job_triggers(
            dapr_jobs,
            pool=pool,
            delivery=delivery,
            reminders=reminders,
            measured=measured,
            scope=settings.scope(),
        ),
    )


def _job_triggers(
    dapr_jobs: DaprJobs | None,
    *,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    delivery: ReminderDelivery,
    reminders: ReminderReconciler,
    measured: metrics.OperatorMetrics,
    scope: NamespaceScope,
) -> JobTriggers | None:
    """With dapr-jobs delivery: what answers the sidecar's job triggers."""
    if dapr_jobs is None:
        return None
    report = partial(report_retrying, reminders.report)
    return JobTriggers(pool=pool, delivery=delivery, report=report, metrics=measured, scope=scope)


def record_collector(
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    *,
    clock: Clock,
    max_age: float,
    registry: CollectorRegistry,
) -> metrics.RecordCollector:
    """The figures of the durable record (reminders sent, tasks completed, outbox lag ...), registered."""

    async def read(now: datetime) -> figures.RecordSnapshot:
        return await record.snapshot(now=now)

    record = stats.Stats(pool)
    collector = metrics.RecordCollector(snapshot=read, now=clock.now, max_age=max_age)
    registry.register(collector)
    return collector


def _relay_runner(
    settings: relay.RelaySettings,
    *,
    clock: Clock,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    registry: CollectorRegistry,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """The outbox relay as one of the operator's background tasks (when Dapr is enabled)."""
    relay_metrics = metrics.RelayMetrics(registry, topics=TOPICS)

    async def run_relay() -> None:
        # Stopped by cancellation with the rest: an unfinished batch rolls back and is
        # published again later (consumers drop the duplicates by event id).
        await relay.run_relay(settings, stop=asyncio.Event(), clock=clock, pool=pool, metrics=relay_metrics)

    return run_relay


async def _serve_http(
    stack: contextlib.AsyncExitStack,
    runtime: Runtime,
    settings: OperatorSettings,
    telemetry: TelemetrySettings,
    registry: CollectorRegistry,
    *,
    before_scrape: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """``/metrics`` (with a metrics port) and the Dapr jobs' triggers (dapr-jobs), until ``stack`` ends."""
    if telemetry.metrics_port is not None:
        host, port = telemetry.metrics_host, telemetry.metrics_port
        metrics_server = server.serving(registry, host=host, port=port, before_scrape=before_scrape)
        await stack.enter_async_context(metrics_server)
    if runtime.job_triggers is not None:
        await stack.enter_async_context(runtime.job_triggers.serving(port=settings.dapr_app_port))


async def _dapr_jobs(settings: OperatorSettings, stack: contextlib.AsyncExitStack) -> DaprJobs | None:
    """The sidecar's Jobs API, with dapr-jobs delivery (its HTTP session closed with ``stack``)."""
    if settings.reminder_delivery != "dapr-jobs":
        return None
    session = await stack.enter_async_context(aiohttp.ClientSession())
    return DaprJobs(session=session, endpoint=settings.dapr_http_endpoint)


def _background(
    settings: OperatorSettings,
    runtime: Runtime,
    *,
    relay_settings: relay.RelaySettings | None,
    clock: Clock,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    registry: CollectorRegistry,
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """What runs beside Kopf: the due work, the Event poster, its wake-ups and the relay."""
    background: list[Callable[[], Coroutine[Any, Any, None]]] = [
        runtime.due_work.run,
        runtime.cluster_events.run,
    ]
    if settings.listen_notify:
        # Reminders and due tasks written by any replica or the API wake the due work at once.
        listener = wakeups.Listener(settings.database_url, {wakeups.DUE_WORK: runtime.due_work.wake})
        background.append(listener.run)
    if settings.dapr_enabled:
        publishing = relay_settings or relay.RelaySettings(database_url=settings.database_url)
        background.append(_relay_runner(publishing, clock=clock, pool=pool, registry=registry))
    return background


async def run(
    settings: OperatorSettings,
    *,
    clock: Clock | None = None,
    stop_flag: StopFlag | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    liveness_endpoint: str | None = None,
    relay_settings: relay.RelaySettings | None = None,
    telemetry: TelemetrySettings | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or a signal arrives).

    Beside Kopf run the due work (overdue tasks, reminders), the Event poster and, when Dapr is
    enabled, the outbox relay (``relay_settings``; default: from ``TODO_*``);
    ``/metrics`` is served when ``telemetry.metrics_port`` is set, and the Dapr jobs' triggers
    on ``settings.dapr_app_port`` with dapr-jobs delivery.
    """
    telemetry = telemetry or TelemetrySettings()
    clock = clock or SystemClock()
    pool = await _open_current(settings)
    client = kube.client_for(api_url=settings.kube_api_url)
    registry = metrics.new_registry()
    records = record_collector(
        pool, clock=clock, max_age=telemetry.metrics_max_age_seconds, registry=registry
    )
    try:
        async with contextlib.AsyncExitStack() as serving:
            runtime = build_runtime(
                settings=settings,
                kube_api=kube.Kube(client),
                pool=pool,
                clock=clock,
                measured=metrics.OperatorMetrics(registry),
                dapr_jobs=await _dapr_jobs(settings, serving),
            )
            serving.callback(runtime.engine.close)
            background = _background(
                settings, runtime, relay_settings=relay_settings, clock=clock, pool=pool, registry=registry
            )
            await _serve_http(serving, runtime, settings, telemetry, registry, before_scrape=records.refresh)
            await kopf.operator(
                registry=handlers.build_registry(
                    reconcilers=runtime.reconcilers, settings=settings, background=background
                ),
                clusterwide=settings.scope().whole_cluster,
                namespaces=settings.scope().kopf_patterns(),
                # Not peering_name: Kopf makes peering mandatory whenever a name is passed here.
                standalone=settings.standalone,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
                # Kopf's own probe endpoint: healthy while its watches and workers are.
                liveness_endpoint=liveness_endpoint,
            )
    finally:
        await client.close()
        await pool.close()
