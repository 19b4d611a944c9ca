"""Real parts for the event tests: a fresh PostgreSQL database and the Dapr double over real HTTP."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from todo_devstack.dapr import DaprDouble
from todo_operator.clock import ManualClock
from todo_operator.domain.events import Event
from todo_operator.events import dapr, relay
from todo_operator.store.outbox import OutboxStore

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

_APPEND = """
INSERT INTO outbox (event_id, topic, event_type, subject, partition_key, payload, traceparent)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    opened: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url, open=False, min_size=1, max_size=8, kwargs={"autocommit": True}
    )
    await opened.open(wait=True)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def store(pool: AsyncConnectionPool[Any]) -> OutboxStore:
    return OutboxStore(pool)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def sidecar() -> AsyncIterator[DaprDouble]:
    async with DaprDouble() as double:
        yield double


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def publisher(sidecar: DaprDouble, session: aiohttp.ClientSession) -> dapr.DaprPublisher:
    return dapr.DaprPublisher(session=session, endpoint=sidecar.url, pubsub="pubsub", timeout=5)


def settings(**overrides: Any) -> relay.RelaySettings:
    values: dict[str, Any] = {
        "database_url": "postgresql://unused",
        "relay_batch_size": 100,
        "relay_max_attempts": 3,
        "relay_retry_seconds": 1.0,
        "relay_retry_cap_seconds": 8.0,
    }
    values.update(overrides)
    return relay.RelaySettings(**values)


def task_event(owner: str, number: int, *, what: str = "created", **data: Any) -> Event:
    name = f"task-{number}"
    payload = {"title": f"Task {number}", "owner": owner, "priority": "medium", "phase": "Open", **data}
    return Event(
        type=f"task.{what}",  # type: ignore[arg-type]
        subject=f"team-a/{name}",
        partition_key=owner,
        key=f"task.{what}:{owner}:{number}",
        data=payload,
    )


def expected_order(events: Sequence[Event]) -> dict[str, list[str]]:
    """Per partition key, the event ids in the order they were recorded."""
    order: dict[str, list[str]] = defaultdict(list)
    for event in events:
        order[event.partition_key].append(str(event.id))
    return order


async def append(pool: AsyncConnectionPool[Any], events: Sequence[Event]) -> None:
    """What the operator's unit of work does (store/records.py), one transaction."""
    async with pool.connection() as connection, connection.transaction(), connection.cursor() as cursor:
        await cursor.executemany(
            _APPEND,
            [
                (e.id, e.topic, e.type, e.subject, e.partition_key, Jsonb(e.data), e.traceparent)
                for e in events
            ],
        )


async def drain(the_relay: relay.Relay, *, clock: ManualClock | None = None, cycles: int = 200) -> None:
    """Publish until a cycle claims nothing (the clock moves past row backoffs when given)."""
    from datetime import timedelta

    for _ in range(cycles):
        result = await the_relay.publish_batch()
        if result.claimed == 0:
            if clock is None:
                return
            clock.advance(timedelta(minutes=10))
            if (await the_relay.publish_batch()).claimed == 0:
                return
    raise AssertionError("the outbox did not drain")


async def outbox_rows(pool: AsyncConnectionPool[Any]) -> list[dict[str, Any]]:
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT id, event_id::text, partition_key, published_at, attempts, last_error, claimed_by"
            " FROM outbox ORDER BY id"
        )
        names = [d.name for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


def counted(the_relay: relay.Relay, counter: str, **labels: str) -> int:
    """One of a relay's counters, summed over the labels not given: the relay counts in its
    metrics only. A task event goes to two topics, so its messages count twice unless a topic
    is given."""
    return int(
        sum(
            sample.value
            for family in the_relay.metrics.registry.collect()
            if family.name == counter
            for sample in family.samples
            if sample.name == f"{counter}_total" and labels.items() <= sample.labels.items()
        )
    )
