"""The composition root: settings in, a running operator out.

Everything the handlers use is built here, inside the operator's event loop
and before Kopf starts (Kopf cancels tasks created after it started when it
stops), and closed here when Kopf returns.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from todo_operator.clock import Clock, SystemClock
from todo_operator.domain import recurrence
from todo_operator.operator import handlers, kube, reconciling
from todo_operator.operator.settings import OperatorSettings
from todo_operator.store import schema
from todo_operator.store.records import Records

StopFlag = asyncio.Event | threading.Event | asyncio.Future[Any]


def open_pool(settings: OperatorSettings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    return AsyncConnectionPool(
        settings.database_url,
        open=False,
        min_size=1,
        max_size=settings.database_pool_size,
        # A connection broken by a database restart is noticed before use (F21).
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True},
    )


def build_services(
    *, settings: OperatorSettings, kube_api: kube.Kube, records: Records, clock: Clock
) -> handlers.Services:
    events = handlers.KopfEvents()
    limits = recurrence.Limits(min_spacing=settings.min_occurrence_spacing)
    recurring = reconciling.RecurringTaskReconciler(
        kube=kube_api, records=records, clock=clock, events=events, limits=limits
    )
    return handlers.Services(
        recurring_tasks=recurring,
        tasks=reconciling.TaskReconciler(
            kube=kube_api, records=records, clock=clock, events=events, recurring=recurring
        ),
    )


async def run(
    settings: OperatorSettings,
    *,
    clock: Clock | None = None,
    stop_flag: StopFlag | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or a signal arrives)."""
    # Refuse to start on an old schema rather than fail on every write later.
    await asyncio.to_thread(schema.require_current, settings.database_url)
    pool = open_pool(settings)
    await pool.open(wait=True, timeout=30)
    client = kube.client_for(api_url=settings.kube_api_url)
    try:
        services = build_services(
            settings=settings, kube_api=kube.Kube(client), records=Records(pool), clock=clock or SystemClock()
        )
        registry = handlers.build_registry(services=services, settings=settings)
        await kopf.operator(
            registry=registry,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            # Not peering_name: Kopf makes peering mandatory whenever a name is passed here.
            standalone=settings.standalone,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await client.close()
        await pool.close()
