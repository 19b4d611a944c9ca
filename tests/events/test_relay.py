"""The outbox relay against real PostgreSQL and the Dapr double over HTTP (F9, F11, F12)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from todo_devstack.dapr import DaprDouble
from todo_operator.clock import ManualClock
from todo_operator.events import dapr, deadletters, relay, schemas
from todo_operator.store.outbox import OutboxStore

from .conftest import append, counted, drain, expected_order, outbox_rows, settings, task_event

USERS = ["alice@example.com", "bob@example.com", "carol@example.com"]
REQUIRED = {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"}


def _by_user(sidecar: DaprDouble, topic: str = "task-events") -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    for received in sidecar.received:
        if received.topic == topic:
            order[received.event["partitionkey"]].append(received.event["id"])
    return order


def _make_relay(
    store: OutboxStore, publisher: relay.Publisher, clock: ManualClock, **overrides: Any
) -> relay.Relay:
    return relay.Relay(store=store, publisher=publisher, settings=settings(**overrides), clock=clock)


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "single"])
async def test_events_arrive_complete_and_in_order_per_user(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
    bulk: bool,
) -> None:
    events = [task_event(user, n) for n in range(8) for user in USERS]
    traced = task_event(USERS[1], 99)
    traced = type(traced)(**{**vars(traced), "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    events.append(traced)
    await append(pool, events)

    the_relay = _make_relay(store, publisher, clock, relay_bulk=bulk, relay_batch_size=10)
    await drain(the_relay)

    assert _by_user(sidecar) == expected_order(events)
    task_events = [r for r in sidecar.received if r.topic == "task-events"]
    for received in task_events:
        event = received.event
        assert event.keys() >= REQUIRED
        assert event["specversion"] == "1.0"
        assert event["datacontenttype"] == "application/json"
        assert event["partitionkey"] == event["data"]["owner"]
        assert received.metadata == {"partitionKey": event["partitionkey"]}
        assert received.bulk is False or bulk
        schemas.parse(dict(event))
    assert any(r.bulk for r in task_events) is bulk
    # The trace goes on: the same trace id (the span is the relay's publish span when tracing is on).
    trace_ids = {
        r.event["traceparent"].split("-")[1] if "traceparent" in r.event else None for r in task_events
    }
    assert trace_ids == {None, "a" * 32}
    # Every task event also goes to task-updates, compact, in the same per-user order.
    updates = _by_user(sidecar, "task-updates")
    assert {user: len(ids) for user, ids in updates.items()} == {
        u: len(i) for u, i in expected_order(events).items()
    }
    assert all(row["published_at"] is not None and row["attempts"] == 1 for row in await outbox_rows(pool))


async def test_sidecar_down_then_back_drains_in_order_nothing_lost(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    """F9: while the sidecar is away events wait in the outbox; after, all of them go, in order."""
    the_relay = _make_relay(store, publisher, clock, relay_batch_size=7)
    first = [task_event(user, n) for n in range(3) for user in USERS]
    await append(pool, first)
    await sidecar.go_away()

    result = await the_relay.publish_batch()
    assert result.sidecar_error is not None
    assert result.published == 0
    second = [task_event(user, n) for n in range(3, 6) for user in USERS]
    await append(pool, second)  # the outbox grows meanwhile
    # The broker down behind a live sidecar (5xx for everything) is the same story.
    await sidecar.come_back()
    sidecar.fail(500)
    assert (await the_relay.publish_batch()).sidecar_error is not None
    rows = await outbox_rows(pool)
    assert len(rows) == 18
    assert all(row["published_at"] is None and row["attempts"] == 0 for row in rows), (
        "an outage is nobody's fault"
    )
    assert all(row["claimed_by"] is None for row in rows), "rows are given back, not left leased"

    sidecar.heal()
    await drain(the_relay)
    assert _by_user(sidecar) == expected_order(first + second)
    assert counted(the_relay, "todo_events_dead_lettered") == 0


async def test_run_loop_backs_off_exponentially_capped_while_sidecar_is_down(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    events = [task_event(user, n) for n in range(4) for user in USERS]
    await append(pool, events)
    await sidecar.go_away()
    the_relay = _make_relay(
        store,
        publisher,
        clock,
        relay_backoff_seconds=0.5,
        relay_backoff_cap_seconds=4.0,
        relay_idle_seconds=1,
    )
    stop = asyncio.Event()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # instant: records the wait instead of waiting
        waits.append(seconds)
        if len(waits) == 6:
            await sidecar.come_back()
        if seconds == 1 and len(sidecar.received) >= 2 * len(events):
            stop.set()
        await asyncio.sleep(0)

    await asyncio.wait_for(the_relay.run(stop=stop, sleep=sleep), timeout=30)
    assert waits[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert _by_user(sidecar) == expected_order(events)


async def test_poison_event_is_dead_lettered_after_max_attempts_others_keep_flowing(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    """F11 + F12: retried with backoff, counted, dead-lettered, retryable; other users unaffected."""
    poison = task_event(USERS[0], 0, title="poison")
    behind = task_event(USERS[0], 1)
    others = [task_event(user, n) for n in range(3) for user in USERS[1:]]
    await append(pool, [poison, behind, *others])
    sidecar.poison(lambda event: event.get("data", {}).get("title") == "poison")
    the_relay = _make_relay(store, publisher, clock, relay_max_attempts=3)

    first = await the_relay.publish_batch()
    assert (first.failed, first.dead_lettered) == (1, 0)
    assert _by_user(sidecar) == expected_order(others), "other users flow; alice's later event waits behind"
    # Before the row's backoff is over it is not retried (nor is alice's next event).
    assert (await the_relay.publish_batch()).claimed == 0
    for attempt in (2, 3):
        await append(pool, [task_event(USERS[1], 10 + attempt)])  # traffic next to it: the failure is its own
        clock.advance(timedelta(seconds=8))
        assert (await the_relay.publish_batch()).failed == 1
    # Three attempts, each of the event's two messages (one per topic it goes to).
    assert counted(the_relay, "todo_event_publish_errors") == 3 * 2
    assert counted(the_relay, "todo_events_dead_lettered") == 1

    rows = {row["event_id"]: row for row in await outbox_rows(pool)}
    assert str(poison.id) not in rows, "moved out of the outbox"
    await drain(the_relay)
    assert str(behind.id) in _by_user(sidecar)[USERS[0]], "the rest of alice's events flow after it"

    admin = deadletters.DeadLetters(store=store, clock=clock)
    [letter] = await admin.list()
    assert (letter.event_id, letter.attempts) == (str(poison.id), 3)
    assert "poisoned event" in (letter.last_error or "")
    assert (await admin.count()).dead_letters == 1

    sidecar.heal()
    retried = await admin.retry(dead_letter_id=letter.id)
    assert retried.requeued
    assert not (await admin.retry(dead_letter_id=letter.id)).requeued, "retrying twice re-queues once"
    await drain(the_relay)
    republished = [r.event for r in sidecar.received if r.event["id"] == str(poison.id)]
    assert len(republished) == 1, "the same event, with the same id"
    assert await admin.list() == []
    assert len(await admin.list(include_retried=True)) == 1


async def test_rejected_event_counts_even_alone_and_invalid_rows_dead_letter_at_once(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    rejected = task_event(USERS[0], 0, title="refused")
    invalid = task_event(USERS[1], 0, priority="whenever")  # not a priority: never a valid event
    fine = task_event(USERS[1], 1)
    await append(pool, [rejected, invalid, fine])
    sidecar.poison(lambda event: event.get("data", {}).get("title") == "refused", status=403)
    the_relay = _make_relay(store, publisher, clock, relay_max_attempts=2, relay_bulk=False)

    await drain(the_relay, clock=clock)
    letters = await deadletters.DeadLetters(store=store, clock=clock).list()
    assert {(letter.event_id, letter.attempts) for letter in letters} == {
        (str(invalid.id), 1),
        (str(rejected.id), 2),
    }
    assert _by_user(sidecar) == {USERS[1]: [str(fine.id)]}


async def test_crash_between_publish_and_marking_republishes_once_more(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    class DiesBeforeMarking(OutboxStore):
        async def mark_published(self, **_: Any) -> None:
            raise ConnectionError("the process died here")

    events = [task_event(user, 0) for user in USERS]
    await append(pool, events)
    doomed = _make_relay(DiesBeforeMarking(pool), publisher, clock, relay_lease_seconds=60)
    with pytest.raises(ConnectionError):
        await doomed.publish_batch()
    assert len(_by_user(sidecar)) == 3

    survivor = _make_relay(store, publisher, clock)
    assert (await survivor.publish_batch()).claimed == 0, "the dead relay's lease still holds"
    clock.advance(timedelta(seconds=61))
    await drain(survivor)
    assert {user: len(ids) for user, ids in _by_user(sidecar).items()} == dict.fromkeys(USERS, 2)
    assert all(row["published_at"] is not None for row in await outbox_rows(pool))


async def test_two_relays_at_once_publish_each_row_once_in_order(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    users = [f"user-{n}@example.com" for n in range(100)]
    events = [task_event(user, n) for n in range(6) for user in users]
    await append(pool, events)
    relays = [_make_relay(store, publisher, clock, relay_batch_size=37) for _ in range(2)]

    async def work(the_relay: relay.Relay) -> None:
        while (await the_relay.publish_batch()).claimed:  # noqa: ASYNC110  # a cycle, not a wait
            await asyncio.sleep(0)  # let the other relay claim in between

    await asyncio.gather(*(work(r) for r in relays), work(relays[0]))
    await drain(relays[1])
    ids = [r.event["id"] for r in sidecar.received if r.topic == "task-events"]
    assert len(ids) == len(set(ids)) == len(events)
    assert _by_user(sidecar) == expected_order(events)
    assert all(counted(r, "todo_events_published", topic="task-events") > 0 for r in relays), (
        "both did share the work"
    )


async def test_bulk_endpoint_missing_falls_back_to_single_publish(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    sidecar.without_bulk()
    events = [task_event(user, n) for n in range(2) for user in USERS]
    await append(pool, events)
    await drain(_make_relay(store, publisher, clock))
    assert _by_user(sidecar) == expected_order(events)
    assert not any(r.bulk for r in sidecar.received)


async def test_published_rows_are_pruned_after_the_retention_period(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    the_relay = _make_relay(store, publisher, clock, outbox_retention_hours=24)
    await append(pool, [task_event(USERS[0], 0)])
    await drain(the_relay)
    await append(pool, [task_event(USERS[0], 1)])  # not published yet: kept whatever its age
    clock.advance(timedelta(hours=23))
    assert await the_relay.prune() == 0
    clock.advance(timedelta(hours=2))
    assert await the_relay.prune() == 1
    assert [row["published_at"] for row in await outbox_rows(pool)] == [None]


def test_backoff_is_exponential_and_capped() -> None:
    assert [relay.exponential(attempt=n, base=1, cap=512) for n in range(1, 12)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        512,
        512,
    ]


async def test_the_double_counts_without_keeping_when_asked(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
    session: aiohttp.ClientSession,
) -> None:
    """The benchmark's sidecar keeps nothing (no garbage-collector pauses) but still counts."""
    sidecar.keep_events = False
    events = [task_event(user, 0) for user in USERS]
    await append(pool, events)
    await drain(_make_relay(store, publisher, clock))
    assert sidecar.received == []
    async with session.get(f"{sidecar.url}/_devstack/received") as response:
        assert await response.json() == {"received": 2 * len(events)}


async def test_a_connection_cut_while_marking_settles_the_batch_at_once(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
    database_url: str,
) -> None:
    """A failover or dropped connection mid-mark: the batch must not wait out its lease (F21 at the relay)."""
    events = [task_event(user, n) for user in USERS for n in range(2)]
    await append(pool, events)
    the_relay = _make_relay(store, publisher, clock, relay_lease_seconds=60)
    sidecar.stall()
    cycle = asyncio.create_task(the_relay.publish_batch())
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        await _until(lambda: sidecar.requests > 0)  # claimed (leased) and on the wire
        async with await psycopg.AsyncConnection.connect(database_url) as locker:
            # A row lock the relay's mark will wait on; then that waiting backend is ended.
            await locker.execute("SELECT id FROM outbox ORDER BY id LIMIT 1 FOR UPDATE")
            sidecar.heal()

            async def cut_the_marking_connection() -> bool:
                cursor = await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    " AND query LIKE '%%UPDATE outbox SET published_at%%'"
                )
                return bool(await cursor.fetchall())

            await _until(cut_the_marking_connection)
            await locker.rollback()
        with pytest.raises(psycopg.OperationalError):
            await cycle

    rows = await outbox_rows(pool)
    assert [(row["published_at"] is not None, row["claimed_by"]) for row in rows] == [(True, None)] * len(
        rows
    )
    assert {user: len(ids) for user, ids in _by_user(sidecar).items()} == dict.fromkeys(
        USERS, 2
    )  # none twice
    assert (await the_relay.publish_batch()).claimed == 0


async def _until(probe: Any) -> None:
    """Poll ``probe`` (plain or async) until it is truthy; fail after 10 s."""
    async with asyncio.timeout(10):
        while True:
            found = probe()
            if asyncio.iscoroutine(found):
                found = await found
            if found:
                return
            await asyncio.sleep(0.01)
