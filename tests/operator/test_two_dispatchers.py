"""Two inline dispatchers (two operator replicas) on one database: every reminder is sent once.

The real scheduler and delivery path against a real PostgreSQL and SMTP
server; only the Kubernetes side (status writes, overdue tasks) is left out,
as it plays no part in who sends what.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from tests.channels.test_delivery import add_reminder
from todo_devstack.smtp import SmtpSink
from todo_operator.channels import mail
from todo_operator.channels.delivery import Outcome, ReminderDelivery
from todo_operator.clock import ManualClock
from todo_operator.domain import timing
from todo_operator.operator.due_work import DueWork
from todo_operator.store.pool import open_pool

NOW = datetime(2026, 12, 9, 17, 0, tzinfo=UTC)


class NoStatusWrites:
    async def report(self, *, namespace: str, name: str, outcome: Outcome) -> None:
        return None


class NoTasks:
    async def reconcile(self, body: dict[str, Any]) -> None:
        return None


def dispatcher(pool: AsyncConnectionPool[Any], clock: ManualClock, *, port: int) -> DueWork:
    connections = mail.SmtpPool(settings=mail.SmtpSettings(port=port, sender="todo@example.com"))
    delivery = ReminderDelivery(
        pool=pool,
        clock=clock,
        send=connections.send,
        sender="todo@example.com",
        retry=mail.RetryPolicy(),
        catch_up=timing.CatchUpPolicy(),
        recipients=timing.RecipientPolicy(),
    )
    return DueWork(
        pool=pool,
        clock=clock,
        kube_api=None,  # type: ignore[arg-type]  # no task falls due in this test
        tasks=NoTasks(),  # type: ignore[arg-type]
        reminders=NoStatusWrites(),  # type: ignore[arg-type]
        delivery=delivery,
        mode="inline",
        catch_up=timing.CatchUpPolicy(),
        concurrency=10,
    )


async def test_two_dispatchers_send_each_reminder_once(database_url: str) -> None:
    pools = [open_pool(database_url, max_size=12) for _ in range(2)]
    for pool in pools:
        await pool.open(wait=True)
    clock = ManualClock(NOW)
    with SmtpSink() as sink:
        for index in range(200):
            await add_reminder(
                pools[0], fire_at=NOW - timedelta(seconds=index % 30), name=f"r{index}-{uuid.uuid4().hex[:6]}"
            )
        running = [asyncio.create_task(dispatcher(pool, clock, port=sink.port).run()) for pool in pools]
        try:
            await asyncio.to_thread(sink.wait_for, 200)
            await asyncio.sleep(0.5)  # a double send would arrive now, after the last first send
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for pool in pools:
                await pool.close()
        sent = collections.Counter(message["X-Todo-Reminder"] for message in sink.messages)
    assert len(sent) == 200
    assert set(sent.values()) == {1}
