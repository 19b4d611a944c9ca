"""The Dapr double's subscriber side: what it accepted, delivered to a subscribed app as daprd does.

Contract (docs.dapr.io), as implemented here:

- "Pub/sub API reference", *Provide a route for Dapr to discover topic
  subscriptions*: at start daprd reads ``GET <app>/dapr/subscribe``, a JSON
  array of ``{"pubsubname", "topic", "route" | "routes", "deadLetterTopic"?,
  "metadata"?}``. daprd waits for the app to listen first; so does the double,
  and it keeps what it accepts meanwhile (a broker would keep it too).
- *Provide route(s) for Dapr to deliver topic events*: each event is a ``POST``
  of the CloudEvent (``application/cloudevents+json``) to the route on the app.
  The answer: 2xx with ``{"status": "SUCCESS"}``, an empty body, JSON without
  ``status`` or a body that is not JSON is delivered; ``RETRY`` or an unknown
  status is retried; ``DROP`` is dropped with a warning; 404 is dropped with an
  error logged; any other HTTP status (and no answer at all) is retried.
- "Authenticate requests from Dapr using token authentication": with an app
  token (``APP_API_TOKEN``) every request to the app carries it in the
  ``dapr-api-token`` header, the subscription request included.
- "Dead Letter Topics": a message that could not be delivered once the
  retries are spent goes to the subscription's ``deadLetterTopic``, and from
  there to that topic's subscribers. The retries are those of a Resiliency
  policy on the component's inbound side (``RetryPolicy`` here, exponential).
- "Publishing & subscribing messages with CloudEvents": a CloudEvent published
  as such gets ``topic`` and ``pubsubname`` (and the trace id) added when missing.

Not daprd (kept out on purpose, it is a double): no CEL routing rules (only
``route`` and ``routes.default``), no bulk subscribe, no ``rawPayload``, no
trace context of its own, no order per topic or partition key (Dapr does not
promise it either), and what is not delivered when the double stops is lost.
An event that fails with no dead-letter topic is given up after the retries
(daprd would leave it to the broker to redeliver).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson

logger = logging.getLogger(__name__)

Answer = Literal["SUCCESS", "RETRY", "DROP"]
Outcome = Literal["delivered", "dropped", "dead-lettered", "failed"]
CLOUDEVENTS = "application/cloudevents+json"


@dataclass(frozen=True, kw_only=True)
class App:
    """The app behind the sidecar: its base URL (``http://host:appPort``) and app API token."""

    url: str
    token: str | None = None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """A Resiliency retry policy on the pub/sub component's inbound side (deliveries), exponential."""

    max_retries: int = 3
    initial_interval: float = 0.5  # Dapr's exponential policy starts at 500 ms ...
    multiplier: float = 1.5  # ... and grows by half each time (the double leaves out the jitter)
    max_interval: float = 10.0
    timeout: float = 30.0  # one attempt (the policy's "timeouts"); a timeout is retried

    def interval(self, retry: int) -> float:
        return min(self.max_interval, self.initial_interval * self.multiplier**retry)


@dataclass(frozen=True, kw_only=True)
class Subscription:
    pubsub: str
    topic: str
    route: str
    dead_letter_topic: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What became of one event for one subscription, and what the app answered each attempt."""

    subscription: Subscription
    event_id: str | None
    outcome: Outcome
    answers: tuple[str, ...]

    @property
    def attempts(self) -> int:
        return len(self.answers)


def _route(entry: Mapping[str, Any]) -> str | None:
    route = entry.get("route")
    if isinstance(route, str) and route:
        return route
    routes = entry.get("routes")
    if not isinstance(routes, dict):
        return None
    if any(isinstance(rule, dict) and rule.get("match") for rule in routes.get("rules") or ()):
        # CEL matching is daprd's; the double sends every event to the default route.
        logger.warning("the Dapr double does not evaluate routing rules: %s gets the default route", entry)
    default = routes.get("default")
    return default if isinstance(default, str) and default else None


def parse_subscriptions(document: Any, *, pubsubs: set[str]) -> list[Subscription]:
    """The subscriptions of a ``/dapr/subscribe`` answer that the double can serve (others are logged)."""
    if not isinstance(document, list):
        logger.error("the app's /dapr/subscribe is not a JSON array: no subscriptions")
        return []
    found = []
    for entry in document:
        route = _route(entry) if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or route is None or not isinstance(entry.get("topic"), str):
            logger.error("ignoring a subscription without a topic or a route: %r", entry)
            continue
        if entry.get("pubsubname") not in pubsubs:
            logger.error(
                "ignoring a subscription to pub/sub %r, not one of %s", entry.get("pubsubname"), pubsubs
            )
            continue
        dead_letter = entry.get("deadLetterTopic")
        found.append(
            Subscription(
                pubsub=entry["pubsubname"],
                topic=entry["topic"],
                route=route if route.startswith("/") else f"/{route}",  # daprd accepts "orders" too
                dead_letter_topic=dead_letter if isinstance(dead_letter, str) and dead_letter else None,
                metadata={str(k): str(v) for k, v in (entry.get("metadata") or {}).items()},
            )
        )
    return found


def envelope(event: Mapping[str, Any], *, pubsub: str, topic: str) -> dict[str, Any]:
    """The CloudEvent as the subscriber gets it: with the attributes Dapr adds when they are missing."""
    delivered = {"topic": topic, "pubsubname": pubsub, **event}
    if "traceparent" in event:
        delivered.setdefault("traceid", event["traceparent"])  # Dapr's older name for it
    return delivered


def judge(status: int, body: bytes) -> tuple[Answer, str]:
    """Dapr's reading of the app's answer to a delivery, and a word on it for the record."""
    if status == 404:
        return "DROP", "HTTP 404"
    if not 200 <= status < 300:
        return "RETRY", f"HTTP {status}"
    try:
        parsed = json.loads(body) if body.strip() else {}
    except ValueError:
        return "SUCCESS", f"HTTP {status} (not JSON: status check skipped)"
    said = parsed.get("status") if isinstance(parsed, dict) else None
    if said is None or said == "":
        return "SUCCESS", f"HTTP {status}"
    word = str(said).upper()
    if word in ("SUCCESS", "RETRY", "DROP"):
        return word, f"HTTP {status} {word}"  # type: ignore[return-value]  # checked just above
    return "RETRY", f"HTTP {status} unknown status {said!r}"


async def read_subscriptions(session: aiohttp.ClientSession, *, headers: Mapping[str, str]) -> Any:
    """The app's ``/dapr/subscribe`` answer, asked until the app listens (daprd waits for the
    app's port too)."""
    wait = 0.05
    while True:
        try:
            async with session.get("dapr/subscribe", headers=headers) as response:
                body = await response.read()
                if response.status == 404:
                    return []  # no programmatic subscriptions
                if 200 <= response.status < 300:
                    return orjson.loads(body) if body.strip() else []
                logger.warning("the app answered /dapr/subscribe with HTTP %d: asking again", response.status)
        except (aiohttp.ClientError, OSError):
            pass  # not listening yet
        except ValueError:
            logger.error("the app's /dapr/subscribe is not JSON: no subscriptions")
            return []
        await asyncio.sleep(wait)  # a poll of the app, not a wait for our own work
        wait = min(wait * 2, 1.0)


async def attempt(
    session: aiohttp.ClientSession,
    subscription: Subscription,
    body: bytes,
    *,
    headers: Mapping[str, str],
    seconds: float,
) -> tuple[Answer, str]:
    """One delivery of a CloudEvent (``body``) to the subscription's route, and Dapr's reading of it."""
    try:
        async with session.post(
            subscription.route.lstrip("/"),
            data=body,
            headers={**headers, "Content-Type": CLOUDEVENTS},
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            return judge(response.status, await response.read())
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        return "RETRY", f"no answer: {type(error).__name__}"


class Deliverer:
    """Reads the app's subscriptions once it listens, then delivers each accepted event in a task of its own.

    ``dead_letter(pubsub, topic, event)`` publishes into the double (which records
    the event and hands it back here for that topic's subscribers).
    """

    def __init__(
        self,
        app: App,
        *,
        pubsubs: set[str],
        retry: RetryPolicy,
        dead_letter: Callable[[str, str, Mapping[str, Any]], None],
        concurrency: int = 16,
    ) -> None:
        self.app = app
        self.retry = retry
        self.deliveries: list[Delivery] = []
        self.subscriptions: list[Subscription] | None = None  # None: not read yet
        self._pubsubs = pubsubs
        self._dead_letter = dead_letter
        self._headers = {"dapr-api-token": app.token} if app.token is not None else {}
        self._slots = asyncio.Semaphore(concurrency)  # requests in flight to the app at once
        self._early: list[tuple[str, str, Mapping[str, Any]]] = []  # accepted before the subscriptions
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._subscribing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(base_url=self.app.url.rstrip("/") + "/")
        self._subscribing = asyncio.create_task(self._subscribe(), name="dapr-double-subscribe")

    async def stop(self) -> None:
        # Counted first: a cancelled delivery leaves the set as it ends.
        undone = len(self._tasks) + len(self._early)
        waiting = [*self._tasks, *([self._subscribing] if self._subscribing is not None else [])]
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        if undone:
            logger.warning("the Dapr double stopped with %d deliveries undone: they are lost", undone)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self) -> None:
        """Until the subscriptions are read and nothing is being delivered (dead letters included)."""
        if self._subscribing is not None:
            await asyncio.shield(self._subscribing)
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def accept(self, pubsub: str, topic: str, event: Mapping[str, Any]) -> None:
        """An event the double accepted: delivered to every subscription of its topic (not awaited)."""
        if self.subscriptions is None:
            self._early.append((pubsub, topic, event))
            return
        for subscription in self.subscriptions:
            if (subscription.pubsub, subscription.topic) == (pubsub, topic):
                task = asyncio.create_task(
                    self._deliver(subscription, envelope(event, pubsub=pubsub, topic=topic))
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # Reading the subscriptions.

    async def _subscribe(self) -> None:
        document = await self._read_subscriptions()
        self.subscriptions = parse_subscriptions(document, pubsubs=self._pubsubs)
        logger.info(
            "the app at %s subscribes to %s",
            self.app.url,
            ", ".join(f"{s.pubsub}/{s.topic} -> {s.route}" for s in self.subscriptions) or "nothing",
        )
        early, self._early = self._early, []
        for pubsub, topic, event in early:
            self.accept(pubsub, topic, event)

    async def _read_subscriptions(self) -> Any:
        assert self._session is not None
        return await read_subscriptions(self._session, headers=self._headers)

    # Delivering.

    async def _attempt(self, subscription: Subscription, body: bytes) -> tuple[Answer, str]:
        assert self._session is not None
        async with self._slots:
            return await attempt(
                self._session, subscription, body, headers=self._headers, seconds=self.retry.timeout
            )

    async def _deliver(self, subscription: Subscription, event: Mapping[str, Any]) -> None:
        body = orjson.dumps(event)
        answers: list[str] = []
        for retry in range(self.retry.max_retries + 1):
            if retry:
                await asyncio.sleep(self.retry.interval(retry - 1))  # the policy's backoff
            answer, said = await self._attempt(subscription, body)
            answers.append(said)
            if answer == "SUCCESS":
                self._done(subscription, event, "delivered", answers)
                return
            if answer == "DROP":
                # Dapr logs an app's DROP as a warning, a 404 (no such route) as an error.
                level = logging.ERROR if said == "HTTP 404" else logging.WARNING
                logger.log(level, "event %s of %s dropped (%s)", event.get("id"), subscription.topic, said)
                self._done(subscription, event, "dropped", answers)
                return
        self._give_up(subscription, event, answers)

    def _give_up(self, subscription: Subscription, event: Mapping[str, Any], answers: list[str]) -> None:
        topic = subscription.dead_letter_topic
        if topic is None:
            logger.error(
                "event %s of %s not delivered after %d attempts (%s) and no dead-letter topic: given up",
                event.get("id"),
                subscription.topic,
                len(answers),
                answers[-1],
            )
            self._done(subscription, event, "failed", answers)
            return
        logger.warning(
            "event %s of %s not delivered after %d attempts (%s): sent to dead-letter topic %s",
            event.get("id"),
            subscription.topic,
            len(answers),
            answers[-1],
            topic,
        )
        self._done(subscription, event, "dead-lettered", answers)
        self._dead_letter(subscription.pubsub, topic, event)

    def _done(
        self, subscription: Subscription, event: Mapping[str, Any], outcome: Outcome, answers: list[str]
    ) -> None:
        event_id = event.get("id")
        self.deliveries.append(
            Delivery(
                subscription=subscription,
                event_id=str(event_id) if event_id is not None else None,
                outcome=outcome,
                answers=tuple(answers),
            )
        )
