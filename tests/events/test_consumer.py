"""The activity consumer: Dapr's answers, duplicates acted on once (F10)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from psycopg_pool import AsyncConnectionPool

from todo_devstack.dapr import DaprDouble
from todo_operator.clock import ManualClock
from todo_operator.events import consumer, dapr, relay
from todo_operator.store.outbox import OutboxStore

from .conftest import append, drain, settings, task_event


async def _activity(pool: AsyncConnectionPool[Any]) -> list[tuple[str, str, str]]:
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT owner, event_type, summary FROM activity ORDER BY id")
        return [tuple(row) for row in await cursor.fetchall()]  # type: ignore[misc]


def _delivered(event: dict[str, Any]) -> dict[str, Any]:
    # Dapr adds attributes of its own to what it delivers to a subscriber.
    return {**event, "topic": "task-events", "pubsubname": "pubsub", "traceid": "00-x"}


async def test_duplicate_delivery_is_acted_on_once(
    pool: AsyncConnectionPool[Any],
    store: OutboxStore,
    sidecar: DaprDouble,
    publisher: dapr.DaprPublisher,
    clock: ManualClock,
) -> None:
    await append(pool, [task_event("alice@example.com", 1, what="completed", phase="Completed")])
    await drain(relay.Relay(store=store, publisher=publisher, settings=settings(), clock=clock))
    [received] = [r for r in sidecar.received if r.topic == "task-events"]
    activity = consumer.ActivityConsumer(pool)

    assert await activity.handle(_delivered(dict(received.event))) == "SUCCESS"
    assert await activity.handle(_delivered(dict(received.event))) == "SUCCESS"
    assert await _activity(pool) == [("alice@example.com", "task.completed", "Task “Task 1” completed")]


async def test_not_our_event_is_dropped_and_a_database_outage_asks_for_a_retry(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    activity = consumer.ActivityConsumer(pool)
    assert await activity.handle({"specversion": "1.0", "id": "x", "type": "order.placed"}) == "DROP"

    event = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/apis/todo.dev/v1alpha1/namespaces/team-a/tasks",
        "type": "task.deleted",
        "subject": "team-a/t",
        "time": "2026-12-01T09:00:00Z",
        "datacontenttype": "application/json",
        "dataschema": "https://todo.dev/schemas/events/task.deleted/v1.json",
        "partitionkey": "alice@example.com",
        "data": {},
    }
    closed: AsyncConnectionPool[Any] = AsyncConnectionPool(database_url, open=False)
    assert await consumer.ActivityConsumer(closed).handle(event) == "RETRY"
    assert await activity.handle(event) == "SUCCESS"
    assert await _activity(pool) == [("alice@example.com", "task.deleted", "Task “t” deleted")]


def test_subscriptions_document_names_routes_and_dead_letter_topics() -> None:
    assert consumer.subscriptions() == [
        {
            "pubsubname": "pubsub",
            "topic": "task-events",
            "route": "/events/task-events",
            "deadLetterTopic": "task-events-dlq",
        },
        {
            "pubsubname": "pubsub",
            "topic": "reminders",
            "route": "/events/reminders",
            "deadLetterTopic": "reminders-dlq",
        },
    ]


async def test_dapr_double_answers_as_documented(sidecar: DaprDouble, session: aiohttp.ClientSession) -> None:
    bulk = f"{sidecar.url}/v1.0-alpha1/publish/bulk/pubsub/task-events"
    event = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {"n": 1}}
    entries = [
        {"entryId": "a", "event": event, "contentType": "application/cloudevents+json"},
        {"entryId": "b", "event": {**event, "id": "2"}, "contentType": "application/cloudevents+json"},
    ]
    async with session.post(bulk, json=entries) as response:
        assert response.status == 204
    sidecar.poison(lambda e: e["id"] == "2")
    async with session.post(bulk, json=entries) as response:
        assert response.status == 500
        assert await response.json() == {
            "failedEntries": [{"entryId": "b", "error": "poisoned event"}],
            "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE",
        }
    async with session.post(f"{sidecar.url}/v1.0/publish/nope/t", json=event) as response:
        assert response.status == 400
        assert (await response.json())["errorCode"] == "ERR_PUBSUB_NOT_FOUND"
    async with session.post(
        f"{sidecar.url}/v1.0/publish/pubsub/t?metadata.partitionKey=k",
        data=b'{"id": "3"}',
        headers={"Content-Type": "application/cloudevents+json"},
    ) as response:
        assert response.status == 204
    assert sidecar.received[-1].metadata == {"partitionKey": "k"}
    assert [r.event["id"] for r in sidecar.received] == ["1", "2", "1", "3"]


def test_dapr_thread_runs_the_double_for_synchronous_code() -> None:
    import urllib.request

    from todo_devstack.dapr import DaprThread

    with DaprThread() as thread:
        request = urllib.request.Request(
            f"{thread.url}/v1.0/publish/pubsub/reminders",
            data=b'{"id": "r"}',
            headers={"Content-Type": "application/cloudevents+json"},
        )
        with urllib.request.urlopen(request) as response:  # a loopback test server
            assert response.status == 204
        assert [r.event["id"] for r in thread.events("reminders")] == ["r"]
        thread.go_away()
        thread.come_back()
        thread.fail(503)
        with pytest.raises(urllib.error.HTTPError, match="503"):
            urllib.request.urlopen(request)
        thread.heal()
