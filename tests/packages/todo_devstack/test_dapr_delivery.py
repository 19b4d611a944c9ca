"""The Dapr double delivers what it accepts to a subscribed app, as daprd does (dapr_delivery's contract).

A small aiohttp app is the subscriber: its ``/dapr/subscribe`` document, and
answers scripted per event id. Events reach the double as the relay sends
them, over HTTP to the publish API. Last, the real REST API as the subscriber:
an event published to the double shows in the owner's activity feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2 as httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.api import harness
from todo_devstack import postgres
from todo_devstack.dapr import App, DaprDouble, DaprThread, RetryPolicy
from todo_devstack.dapr_delivery import judge, parse_subscriptions

make_api = harness.make_api  # the harness fixture, offered to this module

TOKEN = "the-app-token-0123456789"
FAST = RetryPolicy(max_retries=2, initial_interval=0.01, max_interval=0.05, timeout=5)
ORDERS = {"pubsubname": "pubsub", "topic": "orders", "route": "/orders", "deadLetterTopic": "orders-dlq"}
# Scripted answers: (HTTP status, JSON body or None for an empty body), one per attempt.
Script = list[tuple[int, Any]]


@dataclass
class Posted:
    path: str
    headers: Mapping[str, str]
    event: dict[str, Any]


@dataclass
class Subscriber:
    """The app behind the double: answers by event id, the last answer repeated (default: empty 200)."""

    subscriptions: list[dict[str, Any]]
    answers: dict[str, Script] = field(default_factory=dict)
    posted: list[Posted] = field(default_factory=list)
    subscribe_headers: list[Mapping[str, str]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # when given: every delivery waits until it is set
    always_ok: frozenset[str] = frozenset()  # routes that answer an empty 200, whatever the event

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/dapr/subscribe", self._subscribe)
        app.router.add_post("/{route:.*}", self._deliver)
        return app

    async def _subscribe(self, request: web.Request) -> web.Response:
        self.subscribe_headers.append(dict(request.headers))
        return web.json_response(self.subscriptions)

    async def _deliver(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        self.posted.append(Posted(path=request.path, headers=dict(request.headers), event=event))
        if self.hold is not None:
            await self.hold.wait()
        script = (
            [(200, None)] if request.path in self.always_ok else self.answers.get(event["id"], [(200, None)])
        )
        status, body = script.pop(0) if len(script) > 1 else script[0]
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)

    def ids(self, path: str) -> list[str]:
        return [p.event["id"] for p in self.posted if p.path == path]


@contextlib.asynccontextmanager
async def serving(subscriber: Subscriber, *, port: int | None = None) -> AsyncIterator[str]:
    server = TestServer(subscriber.app(), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def sidecar(app_url: str, *, token: str | None = TOKEN) -> AsyncIterator[DaprDouble]:
    async with DaprDouble(app=App(url=app_url, token=token), retry=FAST) as double:
        yield double


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def cloud_event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/tests",
        "type": "order.placed",
        "data": {},
        **extra,
    }


async def publish(
    session: aiohttp.ClientSession, double: DaprDouble, topic: str, event: Mapping[str, Any]
) -> None:
    """As the relay publishes: one CloudEvent to the publish API, which answers 204 once it has it."""
    async with session.post(
        f"{double.url}/v1.0/publish/pubsub/{topic}",
        data=json.dumps(event),
        headers={"Content-Type": "application/cloudevents+json"},
    ) as response:
        assert response.status == 204, await response.text()


async def settled(double: DaprDouble) -> None:
    async with asyncio.timeout(10):
        await double.delivered()


def outcomes(double: DaprDouble) -> dict[str | None, tuple[str, tuple[str, ...]]]:
    return {d.event_id: (d.outcome, d.answers) for d in double.deliveries}


# --- the contract, piece by piece ------------------------------------------------------------------


async def test_subscriptions_are_read_and_events_posted_to_the_route_with_the_token(
    session: aiohttp.ClientSession,
) -> None:
    elsewhere = {"pubsubname": "another-pubsub", "topic": "orders", "route": "/elsewhere"}
    subscriber = Subscriber(subscriptions=[ORDERS, elsewhere])
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    sent = cloud_event("1", traceparent=traceparent)
    async with serving(subscriber) as url, sidecar(url) as double:
        await publish(session, double, "orders", sent)
        await publish(session, double, "payments", cloud_event("2"))  # nobody subscribes to it
        await settled(double)

    assert [headers.get("dapr-api-token") for headers in subscriber.subscribe_headers] == [TOKEN]
    [posted] = subscriber.posted  # not to the subscription of a pub/sub the double does not have
    assert posted.path == "/orders"
    assert posted.headers["dapr-api-token"] == TOKEN
    assert posted.headers["Content-Type"] == "application/cloudevents+json"
    # What Dapr adds to a CloudEvent published as such, when missing.
    assert posted.event == {**sent, "topic": "orders", "pubsubname": "pubsub", "traceid": traceparent}
    assert outcomes(double) == {"1": ("delivered", ("HTTP 200",))}
    assert [(r.topic, r.event["id"]) for r in double.received] == [("orders", "1"), ("payments", "2")]


async def test_success_an_empty_2xx_and_an_answer_without_status_are_delivered_once(
    session: aiohttp.ClientSession,
) -> None:
    subscriber = Subscriber(
        subscriptions=[ORDERS],
        answers={
            "success": [(200, {"status": "SUCCESS"})],
            "empty": [(204, None)],
            "no-status": [(200, {"received": True})],
        },
    )
    async with serving(subscriber) as url, sidecar(url) as double:
        for event_id in subscriber.answers:
            await publish(session, double, "orders", cloud_event(event_id))
        await settled(double)

    assert sorted(subscriber.ids("/orders")) == ["empty", "no-status", "success"]
    assert outcomes(double) == {
        "success": ("delivered", ("HTTP 200 SUCCESS",)),
        "empty": ("delivered", ("HTTP 204",)),
        "no-status": ("delivered", ("HTTP 200",)),
    }


async def test_retry_5xx_an_unknown_status_and_a_refusal_are_retried_then_delivered(
    session: aiohttp.ClientSession,
) -> None:
    subscriber = Subscriber(
        subscriptions=[ORDERS],
        answers={
            "retry": [(200, {"status": "RETRY"}), (200, {"status": "SUCCESS"})],
            "unavailable": [(503, None), (503, None), (200, None)],
            "unknown": [(200, {"status": "LATER"}), (204, None)],
            "refused": [(401, {"title": "who are you?"}), (200, {"status": "SUCCESS"})],
        },
    )
    async with serving(subscriber) as url, sidecar(url) as double:
        for event_id in subscriber.answers:
            await publish(session, double, "orders", cloud_event(event_id))
        await settled(double)

    assert outcomes(double) == {
        "retry": ("delivered", ("HTTP 200 RETRY", "HTTP 200 SUCCESS")),
        "unavailable": ("delivered", ("HTTP 503", "HTTP 503", "HTTP 200")),
        "unknown": ("delivered", ("HTTP 200 unknown status 'LATER'", "HTTP 204")),
        "refused": ("delivered", ("HTTP 401", "HTTP 200 SUCCESS")),
    }
    assert sorted(subscriber.ids("/orders")) == sorted(
        ["retry"] * 2 + ["unavailable"] * 3 + ["unknown"] * 2 + ["refused"] * 2
    )
    assert double.received[-1].topic == "orders"  # nothing was dead-lettered


async def test_drop_and_404_are_dropped_once_and_logged(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    subscriber = Subscriber(
        subscriptions=[ORDERS], answers={"drop": [(200, {"status": "DROP"})], "gone": [(404, None)]}
    )
    async with serving(subscriber) as url, sidecar(url) as double:
        with caplog.at_level(logging.WARNING, logger="todo_devstack.dapr_delivery"):
            for event_id in subscriber.answers:
                await publish(session, double, "orders", cloud_event(event_id))
            await settled(double)

    assert sorted(subscriber.ids("/orders")) == ["drop", "gone"]
    assert outcomes(double) == {"drop": ("dropped", ("HTTP 200 DROP",)), "gone": ("dropped", ("HTTP 404",))}
    assert [r.topic for r in double.received] == ["orders", "orders"]  # not to the dead-letter topic
    logged = {(r.levelname, r.getMessage()) for r in caplog.records}
    assert ("WARNING", "event drop of orders dropped (HTTP 200 DROP)") in logged
    assert ("ERROR", "event gone of orders dropped (HTTP 404)") in logged


async def test_spent_retries_go_to_the_dead_letter_topic_and_its_subscriber(
    session: aiohttp.ClientSession,
) -> None:
    dead = {"pubsubname": "pubsub", "topic": "orders-dlq", "route": "/dead"}
    payments = {"pubsubname": "pubsub", "topic": "payments", "routes": {"default": "/payments"}}
    subscriber = Subscriber(
        subscriptions=[ORDERS, dead, payments],
        answers={"poison": [(500, None)], "unpaid": [(200, {"status": "RETRY"})]},
        always_ok=frozenset({"/dead"}),
    )
    async with serving(subscriber) as url, sidecar(url) as double:
        await publish(session, double, "orders", cloud_event("poison"))
        await publish(session, double, "payments", cloud_event("unpaid"))  # no dead-letter topic
        await settled(double)

    # FAST allows two retries: three attempts, then the dead-letter topic, whose subscriber takes it.
    assert subscriber.ids("/orders") == ["poison"] * 3
    assert [(r.topic, r.event["id"]) for r in double.received if r.topic == "orders-dlq"] == [
        ("orders-dlq", "poison")
    ]
    [dead_lettered] = [p for p in subscriber.posted if p.path == "/dead"]
    assert dead_lettered.event["topic"] == "orders"  # the message as it was published, moved
    assert subscriber.ids("/payments") == ["unpaid"] * 3
    assert sorted((d.event_id, d.subscription.topic, d.outcome) for d in double.deliveries) == [
        ("poison", "orders", "dead-lettered"),
        ("poison", "orders-dlq", "delivered"),
        ("unpaid", "payments", "failed"),
    ]


async def test_publishing_does_not_wait_for_deliveries(session: aiohttp.ClientSession) -> None:
    subscriber = Subscriber(subscriptions=[ORDERS], hold=asyncio.Event())
    async with serving(subscriber) as url, sidecar(url) as double:
        # The app answers nothing until released; every publish is answered all the same.
        async with asyncio.timeout(5):
            for number in range(5):
                await publish(session, double, "orders", cloud_event(f"e{number}"))
        assert double.deliveries == []
        assert subscriber.hold is not None
        subscriber.hold.set()
        await settled(double)

    assert sorted(subscriber.ids("/orders")) == [f"e{number}" for number in range(5)]
    assert {d.outcome for d in double.deliveries} == {"delivered"}


async def test_events_accepted_before_the_app_listens_are_delivered_once_it_subscribes(
    session: aiohttp.ClientSession,
) -> None:
    port = postgres.free_port()
    subscriber = Subscriber(subscriptions=[ORDERS])
    async with sidecar(f"http://127.0.0.1:{port}") as double:
        await publish(session, double, "orders", cloud_event("early"))  # as a relay may, before the API is up
        assert double.deliveries == []
        async with serving(subscriber, port=port):
            await settled(double)
            await publish(session, double, "orders", cloud_event("later"))
            await settled(double)

    assert subscriber.ids("/orders") == ["early", "later"]
    assert outcomes(double) == {"early": ("delivered", ("HTTP 200",)), "later": ("delivered", ("HTTP 200",))}


def test_the_answers_read_as_dapr_reads_them() -> None:
    assert judge(200, b"") == ("SUCCESS", "HTTP 200")
    assert judge(202, b"not json") == ("SUCCESS", "HTTP 202 (not JSON: status check skipped)")
    assert judge(200, b'{"status": "DROP"}') == ("DROP", "HTTP 200 DROP")
    assert judge(200, b'{"status": "RETRY"}') == ("RETRY", "HTTP 200 RETRY")
    assert judge(404, b'{"status": "SUCCESS"}') == ("DROP", "HTTP 404")
    assert judge(400, b'{"status": "SUCCESS"}') == ("RETRY", "HTTP 400")
    assert judge(500, b"") == ("RETRY", "HTTP 500")


def test_subscriptions_the_double_cannot_serve_are_left_out() -> None:
    document = [
        {"pubsubname": "pubsub", "topic": "a", "route": "a-route", "metadata": {"rawPayload": "true"}},
        {
            "pubsubname": "pubsub",
            "topic": "b",
            "routes": {"rules": [], "default": "/b"},
            "deadLetterTopic": "b-dlq",
        },
        {"pubsubname": "pubsub", "topic": "c"},  # no route
        {"pubsubname": "kafka", "topic": "d", "route": "/d"},  # not a pub/sub of this double
        "e",
    ]
    found = parse_subscriptions(document, pubsubs={"pubsub"})
    assert [(s.topic, s.route, s.dead_letter_topic, dict(s.metadata)) for s in found] == [
        ("a", "/a-route", None, {"rawPayload": "true"}),
        ("b", "/b", "b-dlq", {}),
    ]
    assert parse_subscriptions({"not": "a list"}, pubsubs={"pubsub"}) == []


# --- the real REST API as the subscriber ------------------------------------------------------------


def _publish_sync(dapr: DaprThread, event: Mapping[str, Any]) -> None:
    response = httpx.post(
        f"{dapr.url}/v1.0/publish/pubsub/task-events",
        content=json.dumps(event),
        headers={"Content-Type": "application/cloudevents+json"},
        timeout=10,
    )
    assert response.status_code == 204, response.text


def test_an_event_published_to_the_double_reaches_the_activity_feed(make_api: Any, namespace: str) -> None:
    api = make_api(namespace)  # checks harness.DAPR_APP_TOKEN, as the chart's API checks its sidecar's
    owner = f"dana-{uuid.uuid4().hex[:8]}@example.com"  # a feed no other test writes into
    feed = api.as_user(owner)
    with DaprThread(app=App(url=api.url, token=harness.DAPR_APP_TOKEN), retry=FAST) as dapr:
        _publish_sync(dapr, harness.forged_event(owner, namespace))
        dapr.wait_delivered()
        assert [(d.subscription.route, d.outcome) for d in dapr.deliveries()] == [
            ("/events/task-events", "delivered")
        ]
    summaries = [item["summary"] for item in feed.get("/api/v1/activity").json()["items"]]
    assert summaries == ["Task “forged” deleted"]

    # Another token than the API's: refused (401), retried, then moved to the API's dead-letter topic.
    refused = harness.forged_event(owner, namespace)
    with DaprThread(app=App(url=api.url, token="not-the-api's-token"), retry=FAST) as dapr:
        _publish_sync(dapr, refused)
        dapr.wait_delivered()
        assert [(d.outcome, d.answers) for d in dapr.deliveries()] == [("dead-lettered", ("HTTP 401",) * 3)]
        assert [r.event["id"] for r in dapr.events("task-events-dlq")] == [refused["id"]]
    assert [item["summary"] for item in feed.get("/api/v1/activity").json()["items"]] == summaries
