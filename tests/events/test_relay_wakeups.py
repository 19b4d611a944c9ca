"""Relays woken by PostgreSQL NOTIFY instead of polling: idle means idle, and nothing waits.

Real PostgreSQL (migration 0008's trigger, a real LISTEN connection) and the
Dapr double over HTTP, on the wall clock: an idle relay runs no claim at all
until a row is written, wakes by itself when a dead relay's lease or a row's
backoff ends, and several relays sharing a stream of writes publish each
event once, in order per user.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from todo_devstack.dapr import DaprDouble
from todo_operator.clock import SystemClock
from todo_operator.events import dapr, relay
from todo_operator.store import wakeups
from todo_operator.store.outbox import Failure, OutboxStore

from .conftest import append, expected_order, outbox_rows, settings, task_event


class CountingStore(OutboxStore):
    """The real store, counting claims: each is a query a polling relay would run when idle."""

    claims = 0

    async def claim(self, **arguments: Any) -> Any:
        self.claims += 1
        return await super().claim(**arguments)


@contextlib.asynccontextmanager
async def woken(the_relay: relay.Relay, database_url: str) -> AsyncIterator[None]:
    """The relay running with a listener of its own, as ``run_relay`` runs it."""
    bell = asyncio.Event()
    listener = wakeups.Listener(database_url, {wakeups.OUTBOX: bell.set})
    stop = asyncio.Event()
    listening = asyncio.create_task(listener.run())
    running = asyncio.create_task(the_relay.run(stop=stop, wakeups=bell))
    await asyncio.wait_for(listener.listening.wait(), timeout=10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=10)
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening


async def until(condition: Callable[[], Any], *, seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110  # a deadline on the thing under test
            await asyncio.sleep(0.02)


def all_published(pool: AsyncConnectionPool[Any], count: int) -> Callable[[], Any]:
    async def check() -> bool:
        rows = await outbox_rows(pool)
        return len(rows) == count and all(row["published_at"] for row in rows)

    return check


async def test_an_idle_relay_claims_nothing_until_a_row_is_written(
    database_url: str, pool: AsyncConnectionPool[Any], publisher: dapr.DaprPublisher
) -> None:
    store = CountingStore(pool)
    the_relay = relay.Relay(store=store, publisher=publisher, settings=settings(), clock=SystemClock())
    async with woken(the_relay, database_url):
        await asyncio.sleep(0.3)
        idle = store.claims
        assert 1 <= idle <= 2, "one look on starting (and one for the bell rung on listening)"
        await asyncio.sleep(1.0)
        assert store.claims == idle, "idle: not a single claim (polling would have run 20)"

        await append(pool, [task_event(f"user-{n}@example.com", n) for n in range(5)])
        await until(all_published(pool, 5))
        assert store.claims - idle <= 3, "woken once: the batch, maybe one more, and an empty look"


@pytest.mark.parametrize("held_by", ["a dead relay's lease", "a backoff after a failure"])
async def test_an_idle_relay_wakes_by_itself_when_a_row_becomes_claimable(
    held_by: str,
    database_url: str,
    pool: AsyncConnectionPool[Any],
    publisher: dapr.DaprPublisher,
    sidecar: DaprDouble,
) -> None:
    """No one writes again: the relay works out when to look from the rows' own times."""
    clock = SystemClock()
    store = CountingStore(pool)
    await append(pool, [task_event("alice@example.com", n) for n in range(3)])
    held = await store.claim(relay="dead#1", now=clock.now(), lease=timedelta(seconds=0.8), limit=100)
    if held_by.startswith("a backoff"):
        soon = clock.now() + timedelta(seconds=0.8)
        await store.record_failures(
            failures=[Failure(outbox_id=row.id, error="refused", next_attempt_at=soon) for row in held]
        )
    the_relay = relay.Relay(store=store, publisher=publisher, settings=settings(), clock=clock)
    async with woken(the_relay, database_url):
        await until(all_published(pool, 3))
    assert store.claims <= 5, "it slept until the row's time, it did not poll"
    ids = [r.event["id"] for r in sidecar.received if r.topic == "task-events"]
    assert len(ids) == len(set(ids)) == 3


async def test_three_relays_woken_by_notify_publish_a_stream_once_in_order_per_user(
    database_url: str, pool: AsyncConnectionPool[Any], sidecar: DaprDouble
) -> None:
    users = [f"user-{n}@example.com" for n in range(12)]
    events = [task_event(user, n) for n in range(25) for user in users]
    configured = relay.RelaySettings(
        database_url=database_url, dapr_http_endpoint=sidecar.url, relay_batch_size=16, listen_notify=True
    )
    stop = asyncio.Event()
    relays = [asyncio.create_task(relay.run_relay(configured, stop=stop)) for _ in range(3)]
    try:
        # Written in 60 transactions while the relays run, as the operator and the API write.
        for start in range(0, len(events), 5):
            await append(pool, events[start : start + 5])
            await asyncio.sleep(0.005)
        await until(all_published(pool, len(events)), seconds=60)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*relays), timeout=20)

    received = [r.event for r in sidecar.received if r.topic == "task-events"]
    ids = [event["id"] for event in received]
    assert len(ids) == len(set(ids)) == len(events), "each event once"
    order: dict[str, list[str]] = defaultdict(list)
    for event in received:
        order[event["partitionkey"]].append(event["id"])
    assert order == expected_order(events), "in order per user"
