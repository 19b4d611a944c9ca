"""Reminders on the Dapr Scheduler (``reminder_delivery = dapr-jobs``): one Dapr job per reminder.

The third way to keep a reminder's moment outside the operator, next to a
CronJob per reminder and the operator's own dispatcher (docs/REMINDERS.md,
"Choosing a delivery mode"). The Scheduler keeps the jobs (no Kubernetes
objects, no CronJob controller), and the sidecar calls this process back.

- **One job per reminder and generation**: ``reminder-<uid>-g<generation>``,
  ``dueTime`` the fire time (now, for a catch-up), ``ttl`` the end of the
  catch-up look-back, the reminder's identity as ``data``. Scheduled with
  ``overwrite``, so reconciling again replaces it; a new generation deletes the
  job of the one before (the status keeps its name, ``daprJob``).
- **Cancel**: completing the task, deleting the reminder, or its being sent
  deletes the job (deleting a job that is not there is no error).
- **The trigger** (``POST /job/<name>``, :class:`JobTriggers`) is at least
  once: a Scheduler that fails over may repeat it, and one the app did not
  answer is retried by the job's failure policy. The send goes through the
  same exactly-once claim as every other mode (``channels/delivery.py``), so
  a repeated trigger sends nothing. A trigger for a job that no longer matches
  the reminder (an older generation, a deleted reminder) is answered 404,
  which Dapr takes as final.
- **A lost job**: deleted behind the operator's back, or never triggered
  (the Scheduler down past the retries), the reminder is still ``Scheduled``
  after its grace period; the due work catches it up as it does a CronJob
  that did not fire, by scheduling a job due now (marked late).

The server listens on the loopback interface only: its caller is the
sidecar in the same pod.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from todo_operator.channels.delivery import ReminderDelivery
from todo_operator.clock import Clock
from todo_operator.domain import timing
from todo_operator.domain.scope import EVERY_NAMESPACE, NamespaceScope
from todo_operator.events.dapr_jobs import DaprJobs
from todo_operator.kube import Body
from todo_operator.store import reminder_rows
from todo_operator.telemetry.metrics import OperatorMetrics

logger = logging.getLogger(__name__)

_JOB_NAME = re.compile(r"reminder-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-g(\d+)")

# Shows a delivery's outcome in the Reminder's status, retrying what is transient
# (reminders.report_retrying over ReminderReconciler.report).
Report = Callable[..., Awaitable[None]]


def job_name(*, uid: str, generation: int) -> str:
    return f"reminder-{uid}-g{generation}"


def parse_job_name(name: str) -> tuple[str, int] | None:
    """(uid, generation) of one of our job names; None for any other name."""
    found = _JOB_NAME.fullmatch(name)
    return (found.group(1), int(found.group(2))) if found else None


class DaprJobTrigger:
    """Schedules and cancels reminders' jobs (the ReminderReconciler's side)."""

    def __init__(
        self, jobs: DaprJobs, *, clock: Clock, catch_up: timing.CatchUpPolicy, retries: timing.JobRetries
    ) -> None:
        self._jobs = jobs
        self._clock = clock
        self._catch_up = catch_up
        self._retries = retries

    async def ensure(self, body: Body, *, fire: datetime, previous: str | None) -> str:
        """Schedule the reminder's job (replacing any); delete the job of an earlier generation."""
        meta = body["metadata"]
        name = job_name(uid=meta["uid"], generation=meta["generation"])
        # To the second, unlike a CronJob's minute: a moment still ahead is kept even when the
        # catch-up policy calls it "send" (within its minute); one that passed is due now.
        due = max(fire, self._clock.now())
        await self._jobs.schedule(
            name,
            due=due,
            data={"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
            expires=max(fire, due) + self._catch_up.look_back,
            retry_interval=self._retries.interval,
            max_retries=self._retries.max_retries,
        )
        if previous is not None and previous != name:
            await self._jobs.delete(previous)
        return name

    async def remove(self, body: Body, *, current: str | None) -> None:
        meta = body["metadata"]
        name = job_name(uid=meta["uid"], generation=meta["generation"])
        await self._jobs.delete(name)
        if current is not None and current != name:
            await self._jobs.delete(current)


class JobTriggers:
    """Answers the sidecar's ``POST /job/<name>``: deliver the reminder, once, and show the outcome."""

    def __init__(
        self,
        *,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        delivery: ReminderDelivery,
        report: Report,
        metrics: OperatorMetrics | None = None,
        scope: NamespaceScope = EVERY_NAMESPACE,
    ) -> None:
        self._pool = pool
        # A shard answers only for its own namespaces: a job its namespace's former shard
        # scheduled is not its to send (the new shard schedules its own).
        self._scope = scope
        self._delivery = delivery
        self._report = report
        self._metrics = metrics

    async def trigger(self, name: str) -> int:
        """The HTTP status to answer: 200 done (sent, or nothing left to do), 404 not ours to send."""
        parsed = parse_job_name(name)
        target = None
        if parsed is not None:
            async with self._pool.connection() as connection:
                target = await reminder_rows.ReminderRows(connection, scope=self._scope).target(uid=parsed[0])
        if parsed is None or target is None or target.generation != parsed[1]:
            logger.info("job %s: not the job of a live reminder's generation here; nothing to send", name)
            self._count("not_ours")
            return 404
        outcome = await self._delivery.deliver(uid=parsed[0])
        await self._report(namespace=target.namespace, name=target.name, outcome=outcome)
        self._count({"Sent": "sent", "Failed": "failed"}.get(outcome.result, "skipped"))
        return 200

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.job_triggers.labels(outcome).inc()

    async def _handle(self, request: web.Request) -> web.Response:
        status = await self.trigger(request.match_info["name"])
        return web.Response(status=status)

    @contextlib.asynccontextmanager
    async def serving(self, *, port: int, host: str = "127.0.0.1") -> AsyncIterator[None]:
        """Serve ``POST /job/{name}`` on ``host:port`` until the block ends."""
        app = web.Application()
        app.router.add_post("/job/{name}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host=host, port=port).start()
        try:
            yield
        finally:
            await runner.cleanup()
