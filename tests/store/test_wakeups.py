"""Migration 0008's triggers and the Listener, against a real PostgreSQL.

Which writes wake whom: a row that is work notifies its channel at commit,
once per transaction; a write that is no work for anyone (a claim, a
publication, a sent reminder) notifies nobody, so a worker's own bookkeeping
never wakes it again. And the listener survives its connection being killed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from tests.channels.test_delivery import add_reminder
from tests.events.conftest import append, task_event
from tests.store.test_records import _task
from todo_operator.store import wakeups
from todo_operator.store.records import Records

NOW = datetime(2026, 12, 9, 17, 0, tzinfo=UTC)


class Bells:
    def __init__(self) -> None:
        self.rung: collections.Counter[str] = collections.Counter()
        self.changed = asyncio.Event()

    def bell(self, channel: str) -> Any:
        def ring() -> None:
            self.rung[channel] += 1
            self.changed.set()

        return ring

    async def settle(self) -> collections.Counter[str]:
        """What rang, once a statement's notifications had time to arrive (a round trip after)."""
        await asyncio.sleep(0.2)
        return collections.Counter(self.rung)

    def reset(self) -> None:
        self.rung.clear()


@pytest.fixture
async def bells(database_url: str) -> AsyncIterator[tuple[Bells, wakeups.Listener]]:
    heard = Bells()
    listener = wakeups.Listener(
        database_url,
        {channel: heard.bell(channel) for channel in (wakeups.OUTBOX, wakeups.DUE_WORK)},
        retry_seconds=0.05,
    )
    running = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.listening.wait(), timeout=10)
    await heard.settle()
    heard.reset()  # the bells rung once on connecting
    try:
        yield heard, listener
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_new_outbox_row_wakes_the_relays_once_per_transaction(
    pool: AsyncConnectionPool[Any], bells: tuple[Bells, wakeups.Listener]
) -> None:
    heard, _ = bells
    await append(pool, [task_event(f"user-{n}@example.com", n) for n in range(50)])
    assert await heard.settle() == {wakeups.OUTBOX: 1}


async def test_a_rolled_back_write_wakes_no_one(
    pool: AsyncConnectionPool[Any], bells: tuple[Bells, wakeups.Listener]
) -> None:
    heard, _ = bells

    class Undo(Exception):
        pass

    async def insert_then_fail() -> None:
        async with pool.connection() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO outbox (event_id, topic, event_type, subject, partition_key, payload)"
                " VALUES (gen_random_uuid(), 'task-events', 'task.created', 's', 'k', '{}')"
            )
            raise Undo

    with pytest.raises(Undo):
        await insert_then_fail()
    assert await heard.settle() == {}


async def test_claims_and_publications_wake_no_one_but_a_release_does(
    pool: AsyncConnectionPool[Any], bells: tuple[Bells, wakeups.Listener]
) -> None:
    heard, _ = bells
    await append(pool, [task_event("alice@example.com", n) for n in range(3)])
    await heard.settle()
    heard.reset()
    async with pool.connection() as connection:
        await connection.execute(
            "UPDATE outbox SET claimed_by = 'r#1', claimed_until = now() + interval '1 min'"
        )
        await connection.execute(
            "UPDATE outbox SET claimed_until = NULL, published_at = now() WHERE id % 2 = 0"
        )
        assert await heard.settle() == {}, "a claim and a publication are no new work"
        await connection.execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE published_at IS NULL"
        )
    assert await heard.settle() == {wakeups.OUTBOX: 1}, "given back: claimable again"


async def test_reminders_and_due_tasks_wake_the_due_work(
    pool: AsyncConnectionPool[Any], bells: tuple[Bells, wakeups.Listener]
) -> None:
    heard, _ = bells
    uid = await add_reminder(pool, fire_at=NOW, name=f"r-{uuid.uuid4().hex[:6]}")
    assert (await heard.settle())[wakeups.DUE_WORK] == 1, "a reminder to send"
    heard.reset()
    async with pool.connection() as connection:
        await connection.execute("UPDATE reminders SET phase = 'Sent' WHERE uid = %s", (uid,))
        assert await heard.settle() == {}, "a sent reminder is no work"
        await connection.execute(
            "UPDATE reminders SET phase = 'Pending', fire_at = %s WHERE uid = %s",
            (NOW + timedelta(hours=1), uid),
        )
        assert await heard.settle() == {wakeups.DUE_WORK: 1}, "rescheduled"
        heard.reset()
    task = _task(due_at=None)
    await Records(pool).save_task(task)
    assert await heard.settle() == {}, "a task without a due time waits for no moment"
    async with pool.connection() as connection:
        await connection.execute("UPDATE tasks SET due_at = %s WHERE uid = %s", (NOW, task.uid))
        assert await heard.settle() == {wakeups.DUE_WORK: 1}, "an open task's due time"
        heard.reset()
        await connection.execute("UPDATE tasks SET phase = 'Overdue' WHERE uid = %s", (task.uid,))
        assert await heard.settle() == {}, "an overdue task waits for nothing more"


async def test_the_listener_listens_again_after_its_connection_is_killed_and_rings_every_bell(
    pool: AsyncConnectionPool[Any], bells: tuple[Bells, wakeups.Listener]
) -> None:
    heard, listener = bells
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND (query LIKE 'LISTEN%' OR query = 'SELECT 1') AND pid <> pg_backend_pid()"
        )
        assert [row[0] for row in await cursor.fetchall()] == [True]
    async with asyncio.timeout(10):
        while heard.rung[wakeups.OUTBOX] == 0:
            await heard.changed.wait()
            heard.changed.clear()
    assert listener.listening.is_set()
    assert heard.rung[wakeups.DUE_WORK] == 1, "after listening again, every worker looks once"
    heard.reset()
    await append(pool, [task_event("bob@example.com", 1)])
    assert await heard.settle() == {wakeups.OUTBOX: 1}, "and hears what comes after"


async def test_a_listener_without_a_database_keeps_trying() -> None:
    lost = wakeups.Listener(
        "postgresql://nobody@127.0.0.1:1/none", {wakeups.OUTBOX: lambda: None}, retry_seconds=0.01
    )
    running = asyncio.create_task(lost.run())
    await asyncio.sleep(0.3)
    assert not running.done(), "a connection refused is no reason to stop"
    assert not lost.listening.is_set()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
