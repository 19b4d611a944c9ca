"""A stand-in for the Dapr sidecar's publish API, for the tests, the benchmark and the demo.

There is no daprd on the machines that build this project. This small aiohttp
server implements the two documented publish endpoints (docs.dapr.io, "Pub/sub
API reference") with their status codes and bodies, records every CloudEvent
it accepts (the demo logs them), and misbehaves on demand: refuse (4xx), fail
(5xx), poison chosen events (per-entry ``failedEntries`` in a bulk request),
stall, or stop listening and come back on the same port.

It serves the Jobs API too (``dapr_jobs``: one-shot jobs, triggered on
``job_app``).

Given ``partitions`` it is Kafka for a consumer group of app replicas instead
(``dapr_partitions``: partitions by key, order per partition, rebalances).

Given an ``app`` it is also the subscriber's sidecar: it reads the app's
``/dapr/subscribe`` and delivers every event it accepts to the subscribed
routes, asynchronously (a publish never waits for a delivery), retrying and
dead-lettering as daprd does (``dapr_delivery``, which states that contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
from aiohttp import web

from kube_emulator import loopthread
from todo_devstack.dapr_delivery import App, Deliverer, Delivery, RetryPolicy
from todo_devstack.dapr_jobs import JobsDouble
from todo_devstack.dapr_partitions import ConsumerGroup

__all__ = ["App", "DaprDouble", "DaprThread", "Delivery", "Received", "RetryPolicy"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
EventPredicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, kw_only=True)
class Received:
    pubsub: str
    topic: str
    event: Mapping[str, Any]
    metadata: Mapping[str, str]
    bulk: bool


@dataclass(kw_only=True)
class _Faults:
    status: int | None = None  # answer every publish with this status
    stall: asyncio.Event | None = None  # hold requests until set
    poison: list[tuple[EventPredicate, int]] = field(default_factory=list)
    bulk_supported: bool = True


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"errorCode": code, "message": message}, status=status)


_ERROR_CODES = {400: "ERR_PUBSUB_CLOUD_EVENTS_SER", 403: "ERR_PUBSUB_FORBIDDEN"}


def _code(status: int) -> str:
    return "ERR_PUBSUB_PUBLISH_MESSAGE" if status >= 500 else _ERROR_CODES.get(status, "ERR_BAD_REQUEST")


class DaprDouble:
    """The server, inside an event loop (use :class:`DaprThread` from synchronous code)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pubsubs: tuple[str, ...] = ("pubsub",),
        app: App | None = None,
        retry: RetryPolicy | None = None,
        job_app: App | None = None,
        job_clock: Callable[[], datetime] | None = None,
        partitions: int | None = None,
    ) -> None:
        if partitions is not None and app is not None:
            raise ValueError("one app (app=) or a consumer group of replicas (partitions=), not both")
        self.host = host
        # The Jobs API (dapr_jobs): the app it calls back may differ from the subscriber.
        self.jobs = JobsDouble(app=job_app, now=job_clock)
        self.port = port
        self.pubsubs = set(pubsubs)
        self.received: list[Received] = []
        self.received_count = 0
        # A benchmark sends hundreds of thousands of events: kept, they make the garbage
        # collector pause this process for tenths of a second, which is then measured as lag.
        self.keep_events = True
        self.requests = 0
        self.log_events = False
        self._faults = _Faults()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._deliverer = (
            Deliverer(app, pubsubs=self.pubsubs, retry=retry or RetryPolicy(), dead_letter=self._dead_letter)
            if app is not None
            else None
        )
        # Kafka's side (dapr_partitions): the replicas of one app join the group, and leave it.
        self.group = (
            ConsumerGroup(
                partitions=partitions,
                pubsubs=self.pubsubs,
                retry=retry or RetryPolicy(),
                dead_letter=self._dead_letter,
            )
            if partitions is not None
            else None
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def deliveries(self) -> list[Delivery]:
        """What became of each delivery to the app so far (empty without an app)."""
        return self._deliverer.deliveries if self._deliverer is not None else []

    async def delivered(self) -> None:
        """Until the app's subscriptions are read and every accepted event is delivered, dropped or
        dead-lettered (wrap it in a timeout: an app that never listens keeps it waiting)."""
        if self._deliverer is not None:
            await self._deliverer.idle()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1.0/publish/{pubsub}/{topic}", self._publish)
        app.router.add_post("/v1.0-alpha1/publish/bulk/{pubsub}/{topic}", self._publish_bulk)
        app.router.add_get("/v1.0/healthz", self._healthz)
        self.jobs.routes(app)
        # Not Dapr's: lets a benchmark in another process see how much arrived, and the jobs.
        app.router.add_get("/_devstack/received", self._count)
        app.router.add_get("/_devstack/jobs", self._jobs_report)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()
        await self.jobs.start()
        if self._deliverer is not None:
            # As daprd at sidecar start: the app's subscriptions are read once it listens.
            await self._deliverer.start()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            server = self._site._server  # aiohttp keeps the bound socket here; the port was 0
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self.heal()
        await self.jobs.stop()
        if self._deliverer is not None:
            await self._deliverer.stop()
        if self.group is not None:
            await self.group.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DaprDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def go_away(self) -> None:
        """Stop listening (connections are refused) until :meth:`come_back`."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def come_back(self) -> None:
        if self._site is None:
            await self._listen()

    # Faults (call from the server's loop; DaprThread does that for you).

    def fail(self, status: int = 500) -> None:
        """Answer every publish with ``status`` (5xx: the broker is down; 4xx: refused)."""
        self._faults.status = status

    def poison(self, predicate: EventPredicate, *, status: int = 500) -> None:
        """Fail the events ``predicate`` picks, every time (in bulk: as ``failedEntries``)."""
        self._faults.poison.append((predicate, status))

    def stall(self) -> None:
        """Hold every publish request until :meth:`heal`."""
        if self._faults.stall is None:
            self._faults.stall = asyncio.Event()

    def without_bulk(self) -> None:
        """Answer the bulk endpoint with a bare 404, as a sidecar without it would."""
        self._faults.bulk_supported = False

    def heal(self) -> None:
        if self._faults.stall is not None:
            self._faults.stall.set()
        self._faults = _Faults()

    # Handlers.

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _jobs_report(self, request: web.Request) -> web.Response:
        return web.json_response(self.jobs.report())

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response({"received": self.received_count})

    async def _common(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        if self._faults.stall is not None:
            await self._faults.stall.wait()
        pubsub = request.match_info["pubsub"]
        if pubsub not in self.pubsubs:
            return _error(400, "ERR_PUBSUB_NOT_FOUND", f"pubsub {pubsub} not found")
        if self._faults.status is not None:
            status = self._faults.status
            return _error(status, _code(status), "injected fault")
        return None

    def _poisoned(self, event: Mapping[str, Any]) -> int | None:
        for predicate, status in self._faults.poison:
            if predicate(event):
                return status
        return None

    def _record(
        self, *, pubsub: str, topic: str, event: Mapping[str, Any], metadata: Mapping[str, str], bulk: bool
    ) -> None:
        self.received_count += 1
        if self.keep_events:
            self.received.append(
                Received(pubsub=pubsub, topic=topic, event=event, metadata=metadata, bulk=bulk)
            )
        if self.log_events:
            logger.info("CloudEvent on %s: %s", topic, json.dumps(event, sort_keys=True))
        if self._deliverer is not None:
            self._deliverer.accept(pubsub, topic, event)
        if self.group is not None:
            self.group.accept(pubsub, topic, event, key=metadata.get("partitionKey"))

    def _dead_letter(self, pubsub: str, topic: str, event: Mapping[str, Any]) -> None:
        # daprd publishes an undeliverable message to the dead-letter topic through the component:
        # the broker (this double) takes it like any other, and delivers it to that topic's subscribers.
        self._record(pubsub=pubsub, topic=topic, event=event, metadata={}, bulk=False)

    async def _publish(self, request: web.Request) -> web.Response:
        failed = await self._common(request)
        if failed is not None:
            return failed
        try:
            event = orjson.loads(await request.read())
        except ValueError:
            return _error(400, "ERR_PUBSUB_CLOUD_EVENTS_SER", "body is not JSON")
        if request.content_type != "application/cloudevents+json" or not isinstance(event, dict):
            return _error(400, "ERR_PUBSUB_CLOUD_EVENTS_SER", "expected application/cloudevents+json")
        status = self._poisoned(event)
        if status is not None:
            return _error(status, _code(status), "poisoned event")
        metadata = {
            key.removeprefix("metadata."): value
            for key, value in request.query.items()
            if key.startswith("metadata.")
        }
        self._record(
            pubsub=request.match_info["pubsub"],
            topic=request.match_info["topic"],
            event=event,
            metadata=metadata,
            bulk=False,
        )
        return web.Response(status=204)

    async def _publish_bulk(self, request: web.Request) -> web.Response:
        if not self._faults.bulk_supported:
            self.requests += 1
            return web.Response(status=404, text="404 page not found")
        failed = await self._common(request)
        if failed is not None:
            return failed
        try:
            entries = orjson.loads(await request.read())
        except ValueError:
            return _error(400, "ERR_PUBSUB_EVENTS_SER", "body is not a JSON array")
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "entryId" in e for e in entries):
            return _error(400, "ERR_PUBSUB_EVENTS_SER", "expected a JSON array of entries with entryId")
        failed_entries = []
        for entry in entries:
            event = entry.get("event")
            if entry.get("contentType") != "application/cloudevents+json" or not isinstance(event, dict):
                failed_entries.append({"entryId": entry["entryId"], "error": "not a CloudEvent"})
                continue
            if self._poisoned(event) is not None:
                failed_entries.append({"entryId": entry["entryId"], "error": "poisoned event"})
                continue
            self._record(
                pubsub=request.match_info["pubsub"],
                topic=request.match_info["topic"],
                event=event,
                metadata=dict(entry.get("metadata") or {}),
                bulk=True,
            )
        if failed_entries:
            return web.json_response(
                {"failedEntries": failed_entries, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE"}, status=500
            )
        return web.Response(status=204)


class DaprThread:
    """The double in its own thread and event loop, for synchronous tests and the demo."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app: App | None = None,
        retry: RetryPolicy | None = None,
        job_app: App | None = None,
        job_clock: Callable[[], datetime] | None = None,
        partitions: int | None = None,
    ) -> None:
        self._double = DaprDouble(
            host=host,
            port=port,
            app=app,
            retry=retry,
            job_app=job_app,
            job_clock=job_clock,
            partitions=partitions,
        )

        @contextlib.asynccontextmanager
        async def serve() -> AsyncIterator[DaprDouble]:
            await self._double.start()
            try:
                yield self._double
            finally:
                await self._double.stop()

        self._thread = loopthread.LoopThread(name="devstack-dapr", serve=serve)

    @property
    def url(self) -> str:
        return self._double.url

    def __enter__(self) -> DaprThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.stop()

    def call(self, fn: Callable[[DaprDouble], T]) -> T:
        """Run ``fn(double)`` in the server's loop and return its result."""
        return self._thread.call(fn)

    def run(self, fn: Callable[[DaprDouble], Awaitable[T]]) -> T:
        """Await ``fn(double)`` in the server's loop and return its result."""
        return self._thread.run(fn(self._double))

    def events(self, topic: str | None = None) -> list[Received]:
        return self.call(lambda d: [r for r in d.received if topic is None or r.topic == topic])

    def deliveries(self) -> list[Delivery]:
        return self.call(lambda d: list(d.deliveries))

    def wait_delivered(self, *, timeout: float = 20.0) -> None:
        """Until every event accepted so far is delivered, dropped or dead-lettered (under 30 s)."""

        async def delivered() -> None:
            async with asyncio.timeout(timeout):
                await self._double.delivered()

        self._thread.run(delivered())

    def fail(self, status: int = 500) -> None:
        self.call(lambda d: d.fail(status))

    def poison(self, predicate: EventPredicate, *, status: int = 500) -> None:
        self.call(lambda d: d.poison(predicate, status=status))

    def stall(self) -> None:
        self.call(lambda d: d.stall())

    def heal(self) -> None:
        self.call(lambda d: d.heal())

    def go_away(self) -> None:
        self._thread.run(self._double.go_away())

    def come_back(self) -> None:
        self._thread.run(self._double.come_back())


async def _serve(
    *, host: str, port: int, log_events: bool, keep_events: bool, app: App | None, job_app: App | None
) -> None:
    double = DaprDouble(host=host, port=port, app=app, job_app=job_app)
    double.log_events = log_events
    double.keep_events = keep_events
    async with double:
        print(f"Dapr double listening on {double.url}", flush=True)
        while True:
            # A demo runs for days: keep the last hour's events, not all of them.
            await asyncio.sleep(3600)
            double.received.clear()


def main(argv: list[str] | None = None) -> None:
    """``python -m todo_devstack.dapr``: the double as a process of its own (demo, benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3500)
    parser.add_argument("--log-events", action="store_true", help="log every CloudEvent received")
    parser.add_argument(
        "--count-only", action="store_true", help="count the CloudEvents received, keep none (benchmarks)"
    )
    parser.add_argument(
        "--app-url",
        help="deliver to the subscriptions of the app at this URL (http://host:appPort), as its sidecar;"
        " the app token is read from APP_API_TOKEN, as daprd reads it",
    )
    parser.add_argument(
        "--job-app-url",
        help="trigger the jobs of the Jobs API on the app at this URL (POST <url>/job/<name>)",
    )
    args = parser.parse_args(argv)
    app = App(url=args.app_url, token=os.environ.get("APP_API_TOKEN") or None) if args.app_url else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _serve(
                host=args.host,
                port=args.port,
                log_events=args.log_events,
                keep_events=not args.count_only,
                app=app,
                job_app=App(url=args.job_app_url) if args.job_app_url else None,
            )
        )


if __name__ == "__main__":
    main()
