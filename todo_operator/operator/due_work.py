"""One loop for all time-driven work: overdue tasks, inline reminders, missed CronJobs.

Kopf offers per-object timers and daemons, but they are heavy at thousands of
objects (a task and a polling loop each). Instead this single loop asks
PostgreSQL "what falls due next?" (partial indexes make that cheap), sleeps
until then — or until woken because something changed — and does what is
due:

* open tasks whose ``dueAt`` passed turn ``Overdue`` (through the Task
  reconciler, so status, row and ``task.overdue`` event stay consistent);
* ``inline`` delivery: due reminders are sent, concurrently and each once;
* ``cronjob`` and ``dapr-jobs`` delivery: a reminder whose CronJob or Dapr job
  should have fired but was not sent is caught up (a Job, or a Dapr job due
  now, marked late) or, past the look-back, ends ``Failed``/``Missed`` — the
  catch-up policy of docs/REMINDERS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from todo_operator import kube
from todo_operator.channels.delivery import ReminderDelivery
from todo_operator.clock import Clock
from todo_operator.domain import crds, timing
from todo_operator.domain.scope import EVERY_NAMESPACE, NamespaceScope
from todo_operator.events import dapr
from todo_operator.operator.reconciling import TaskReconciler
from todo_operator.operator.reminders import Delivery, ReminderReconciler, report_retrying
from todo_operator.store import reminder_rows

logger = logging.getLogger(__name__)


class Doorbell:
    """Lets reconcilers wake the scheduler when they add work (built before the scheduler exists)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def ring(self) -> None:
        for callback in list(self._listeners):
            callback()


class DueWork:
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clock: Clock,
        kube_api: kube.Kube,
        tasks: TaskReconciler,
        reminders: ReminderReconciler,
        delivery: ReminderDelivery,
        mode: Delivery,
        catch_up: timing.CatchUpPolicy,
        batch_size: int = 500,
        concurrency: int = 50,
        doorbell: Doorbell | None = None,
        max_idle: timedelta = timedelta(seconds=60),
        hold: timedelta = timedelta(seconds=5),
        heartbeat: Callable[[datetime], None] = lambda _: None,
        scope: NamespaceScope = EVERY_NAMESPACE,
    ) -> None:
        self._pool = pool
        self._scope = scope  # a shard's: the work of the objects it serves (docs/ARCHITECTURE.md)
        self._rows = reminder_rows.ReminderRows(pool, scope=scope)
        self._clock = clock
        self._kube = kube_api
        self._tasks = tasks
        self._reminders = reminders
        self._delivery = delivery
        self._mode = mode
        self._catch_up = catch_up
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._max_idle = max_idle
        # How long a reminder that did not end (taken by another replica, an unexpected error)
        # waits before this loop looks at it again.
        self._hold = hold
        # Called after every complete pass: the "operator is reconciling" signal for alerts.
        self._heartbeat = heartbeat
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        clock.on_change(self.wake)
        if doorbell is not None:
            doorbell.subscribe(self.wake)

    def wake(self) -> None:
        """Look again now (thread-safe: a test's clock or another thread may call it)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                next_at: datetime | None
                try:
                    now = self._clock.now()
                    await self._turn_overdue(now)
                    if self._mode == "inline":
                        await self._send_due(now)
                    else:
                        await self._catch_up_cronjobs(now)
                    next_at = await self._next_work()
                    self._heartbeat(now)
                except (psycopg.OperationalError, kube.TransientKubeError, dapr.SidecarUnavailable) as error:
                    logger.warning("scheduler: %s; trying again shortly", error)
                    next_at = self._clock.now() + timedelta(seconds=5)
                except Exception:
                    # One bad object must not stop the loop that all due work depends on.
                    logger.exception("scheduler: unexpected failure; trying again shortly")
                    next_at = self._clock.now() + timedelta(seconds=5)
                timeout = self._max_idle.total_seconds()
                if next_at is not None:
                    timeout = min(max((next_at - self._clock.now()).total_seconds(), 0.0), timeout)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        finally:
            for task in self._in_flight.values():
                task.cancel()

    async def _next_work(self) -> datetime | None:
        async with self._pool.connection() as connection:
            rows = reminder_rows.ReminderRows(connection, scope=self._scope)
            candidates = [await rows.next_open_task_due()]
            if self._mode == "inline":
                fire = await rows.next_inline_fire(excluding=list(self._in_flight))
                candidates.append(fire)
            else:
                fire = await rows.next_cronjob_check()
                candidates.append(fire + self._catch_up.grace if fire else None)
        due = [candidate for candidate in candidates if candidate is not None]
        return min(due) if due else None

    async def _turn_overdue(self, now: datetime) -> None:
        due = await self._rows.open_tasks_due(now=now, limit=self._batch_size)
        for namespace, name in due:
            body = await self._kube.get(crds.TASK, namespace=namespace, name=name)
            if body is not None:
                await self._tasks.reconcile(body)

    async def _send_due(self, now: datetime) -> None:
        due = await self._rows.due_inline(now=now, limit=self._batch_size, excluding=list(self._in_flight))
        for uid, namespace, name in due:
            if uid not in self._in_flight:
                task = asyncio.create_task(self._send_one(uid=uid, namespace=namespace, name=name))
                self._in_flight[uid] = task

    async def _send_one(self, *, uid: str, namespace: str, name: str) -> None:
        """Deliver one reminder; one that did not end is held back a while before it is looked at again.

        While a reminder is in ``_in_flight`` the loop neither picks it nor
        counts it as due work (:meth:`_next_work`), so neither a delivery that
        waits between retries, nor one that another replica holds locked, nor
        one that keeps failing in an unexpected way makes the loop spin.
        """
        ended = False
        try:
            try:
                async with self._slots:
                    outcome = await self._delivery.deliver(uid=uid)
                await report_retrying(self._reminders.report, namespace=namespace, name=name, outcome=outcome)
                ended = outcome.result != "Skipped"
            except Exception:
                logger.exception("reminder %s/%s: delivery failed unexpectedly", namespace, name)
            if not ended:
                await asyncio.sleep(self._hold.total_seconds())
        finally:
            self._in_flight.pop(uid, None)
        if not ended:
            self.wake()

    async def _catch_up_cronjobs(self, now: datetime) -> None:
        missed = await self._rows.missed_cronjobs(before=now - self._catch_up.grace, limit=self._batch_size)
        for uid, namespace, name in missed:
            body = await self._kube.get(crds.REMINDER, namespace=namespace, name=name)
            if body is None:
                continue
            await self._rows.mark_late(uid=uid)
            # Re-reconciling with the moment passed creates the catch-up Job or ends it Missed.
            await self._reminders.reconcile(body)
