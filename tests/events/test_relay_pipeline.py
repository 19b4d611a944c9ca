"""The run loop claims the next batch while one is published; the order per user must not change.

Real PostgreSQL and the Dapr double over HTTP. Batches of four rows from three
users, so every batch claimed ahead holds later rows of the users of the batch
being published.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from todo_devstack.dapr import DaprDouble
from todo_operator.clock import ManualClock
from todo_operator.domain.events import Event
from todo_operator.events import dapr, relay
from todo_operator.store.outbox import OutboxStore

from .conftest import append, counted, expected_order, outbox_rows, settings, task_event

USERS = ["alice@example.com", "bob@example.com", "carol@example.com"]


def _first_deliveries(sidecar: DaprDouble) -> dict[str, list[str]]:
    """Per user, event ids in the order they first reached the sidecar on task-events."""
    order: dict[str, list[str]] = defaultdict(list)
    for received in sidecar.received:
        ids = order[received.event["partitionkey"]]
        if received.topic == "task-events" and received.event["id"] not in ids:
            ids.append(received.event["id"])
    return order


def _events() -> list[Event]:
    return [task_event(user, n) for n in range(8) for user in USERS]


async def _run_until(
    the_relay: relay.Relay,
    clock: ManualClock,
    done: Callable[[], bool],
    *,
    on_wait: Callable[[int], Any] | None = None,
) -> list[float]:
    """Run the loop; each wait moves the clock on instead of sleeping (row backoffs pass)."""
    stop = asyncio.Event()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(timedelta(seconds=seconds))
        if on_wait is not None:
            on_wait(len(waits))
        if done():
            stop.set()
        await asyncio.sleep(0)

    await asyncio.wait_for(the_relay.run(stop=stop, sleep=sleep), timeout=30)
    return waits


class _Counting:
    """The real publisher, counting bulk requests (and stopping the loop after the first)."""

    def __init__(self, inner: dapr.DaprPublisher, *, stop_after_first: asyncio.Event | None = None) -> None:
        self._inner = inner
        self._stop = stop_after_first
        self.bulk_requests = 0

    async def publish(self, *, topic: str, message: dapr.Message) -> dapr.Rejected | None:
        return await self._inner.publish(topic=topic, message=message)

    async def publish_bulk(self, *, topic: str, messages: Sequence[dapr.Message]) -> dapr.BulkOutcome:
        self.bulk_requests += 1
        if self._stop is not None:
            self._stop.set()
        return await self._inner.publish_bulk(topic=topic, messages=messages)


async def test_a_row_that_failed_is_not_overtaken_by_the_batch_claimed_ahead(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    """Alice's first event fails once on its own; her later rows, already claimed ahead, wait for it."""
    events = _events()
    await append(pool, events)
    failed_once: set[str] = set()

    def fails_the_first_time(event: Any) -> bool:
        if event["partitionkey"] != USERS[0] or event["id"] in failed_once or failed_once:
            return False
        failed_once.add(event["id"])  # alice's first event on task-events
        return True

    sidecar.poison(fails_the_first_time)
    the_relay = relay.Relay(
        store=store,
        publisher=publisher,
        settings=settings(relay_batch_size=4, relay_idle_seconds=1),
        clock=clock,
    )

    waits = await _run_until(
        the_relay,
        clock,
        lambda: counted(the_relay, "todo_events_published", topic="task-events") == len(events),
    )

    assert set(waits) == {1}, "only idle waits: an event's own failure is no outage to back off from"
    assert failed_once == {str(events[0].id)}
    assert counted(the_relay, "todo_event_publish_errors") == 1
    assert _first_deliveries(sidecar) == expected_order(events), "alice's later events did not overtake it"
    rows = await outbox_rows(pool)
    assert all(row["claimed_by"] is None for row in rows)
    # Alice's rows behind it were claimed ahead and given back uncounted.
    assert [row["attempts"] for row in rows] == [2] + [1] * (len(events) - 1)


async def test_an_outage_gives_back_the_batch_claimed_ahead_uncounted(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    """F9 with a batch claimed ahead: both batches go back, nobody's fault, then all go in order."""
    events = _events()
    await append(pool, events)
    sidecar.fail(503)
    counting = _Counting(publisher)
    the_relay = relay.Relay(
        store=store,
        publisher=counting,
        settings=settings(relay_batch_size=4, relay_idle_seconds=1),
        clock=clock,
    )

    def on_wait(count: int) -> None:
        if count == 3:
            sidecar.heal()

    waits = await _run_until(
        the_relay,
        clock,
        lambda: counted(the_relay, "todo_events_published", topic="task-events") == len(events),
        on_wait=on_wait,
    )
    assert waits[:3] == [0.5, 1.0, 2.0], "backed off while the sidecar failed"
    assert counting.bulk_requests > 3
    assert _first_deliveries(sidecar) == expected_order(events)
    rows = await outbox_rows(pool)
    assert {row["attempts"] for row in rows} == {1}, "an outage is nobody's fault"
    assert all(row["claimed_by"] is None for row in rows)


async def test_stopping_gives_back_the_batch_claimed_ahead(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    """The current batch is finished, the one claimed ahead is released: nothing waits for a lease."""
    events = _events()
    await append(pool, events)
    stop = asyncio.Event()
    the_relay = relay.Relay(
        store=store,
        publisher=_Counting(publisher, stop_after_first=stop),
        settings=settings(relay_batch_size=4),
        clock=clock,
    )

    await asyncio.wait_for(the_relay.run(stop=stop), timeout=30)

    rows = await outbox_rows(pool)
    published = [row for row in rows if row["published_at"] is not None]
    assert [row["id"] for row in published] == [row["id"] for row in rows[:4]], "the first batch, whole"
    assert all(row["claimed_by"] is None for row in rows), "the batch claimed ahead was given back"
    assert {row["attempts"] for row in rows[4:]} == {0}


async def test_two_relays_claiming_ahead_publish_each_row_once_in_order(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    users = [f"user-{n}@example.com" for n in range(40)]
    events = [task_event(user, n) for n in range(6) for user in users]
    await append(pool, events)
    relays = [
        relay.Relay(store=store, publisher=publisher, settings=settings(relay_batch_size=17), clock=clock)
        for _ in range(2)
    ]

    def done() -> bool:
        return sum(counted(r, "todo_events_published", topic="task-events") for r in relays) == len(events)

    await asyncio.gather(*(_run_until(r, clock, done) for r in relays))

    ids = [r.event["id"] for r in sidecar.received if r.topic == "task-events"]
    assert len(ids) == len(set(ids)) == len(events)
    assert _first_deliveries(sidecar) == expected_order(events)
    assert all(counted(r, "todo_events_published", topic="task-events") > 0 for r in relays), (
        "both did share the work"
    )
