"""Two inline dispatchers (two operator replicas) on one database: every reminder is sent once.

And they hear of reminders written elsewhere (another replica, the API) through
PostgreSQL NOTIFY, not on their next look a minute later.

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
from todo_operator.store import wakeups
from todo_operator.store.pool import open_pool

NOW = datetime(2026, 12, 9, 17, 0, tzinfo=UTC)


class NoStatusWrites:
    async def report(self, *, namespace: str, name: str, outcome: Outcome) -> None:
        return None


class NoTasks:
    async def reconcile(self, body: dict[str, Any]) -> None:
        return None


def dispatcher(
    pool: AsyncConnectionPool[Any],
    clock: ManualClock,
    *,
    port: int,
    max_idle: timedelta = timedelta(seconds=60),
) -> DueWork:
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
        max_idle=max_idle,
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


async def test_idle_dispatchers_hear_of_reminders_written_elsewhere_at_once(database_url: str) -> None:
    """Both asleep with nothing due and no next look for an hour; a third party writes reminders."""
    pools = [open_pool(database_url, max_size=12) for _ in range(3)]
    for pool in pools:
        await pool.open(wait=True)
    clock = ManualClock(NOW)
    with SmtpSink() as sink:
        dispatchers = [
            dispatcher(pool, clock, port=sink.port, max_idle=timedelta(hours=1)) for pool in pools[:2]
        ]
        listeners = [wakeups.Listener(database_url, {wakeups.DUE_WORK: d.wake}) for d in dispatchers]
        running = [asyncio.create_task(d.run()) for d in dispatchers]
        running += [asyncio.create_task(listener.run()) for listener in listeners]
        try:
            for listener in listeners:
                await asyncio.wait_for(listener.listening.wait(), timeout=10)
            await asyncio.sleep(0.3)  # both have looked, found nothing, and sleep for an hour
            for index in range(40):
                await add_reminder(pools[2], fire_at=NOW, name=f"r{index}-{uuid.uuid4().hex[:6]}")
            await asyncio.to_thread(sink.wait_for, 40)
            await asyncio.sleep(0.5)  # a double send would arrive now
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for pool in pools:
                await pool.close()
        sent = collections.Counter(message["X-Todo-Reminder"] for message in sink.messages)
    assert len(sent) == 40
    assert set(sent.values()) == {1}


async def test_without_wakeups_an_idle_dispatcher_sleeps_through_new_work(database_url: str) -> None:
    """The control: the same dispatcher not listening sends nothing until its next look."""
    pool = open_pool(database_url, max_size=4)
    await pool.open(wait=True)
    clock = ManualClock(NOW)
    with SmtpSink() as sink:
        running = asyncio.create_task(
            dispatcher(pool, clock, port=sink.port, max_idle=timedelta(hours=1)).run()
        )
        try:
            await asyncio.sleep(0.3)
            await add_reminder(pool, fire_at=NOW, name="unheard")
            await asyncio.sleep(1.0)
            assert sink.messages == []
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await pool.close()
