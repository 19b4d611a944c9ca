"""The Dapr double's Jobs API: the Dapr Scheduler as seen through a sidecar, one-shot jobs.

Contract (docs.dapr.io, "Jobs API reference"; dapr/dapr ``pkg/api/http/jobs.go``,
``pkg/runtime/scheduler/internal/cluster/streamer.go`` and the daprd
integration tests under ``tests/integration/suite/daprd/jobs/http``):

- ``POST /v1.0-alpha1/jobs/<name>`` (and the stable ``/v1.0/jobs/<name>``)
  with ``{"dueTime", "schedule", "repeats", "ttl", "data", "overwrite",
  "failurePolicy"}``: 204 scheduled; 400 when neither ``schedule`` nor
  ``dueTime`` is given, when the body names the job too, or a time does not
  parse; 409 when the name is taken and ``overwrite`` is not true; 500 when
  the Scheduler cannot be reached.
- ``GET .../jobs/<name>``: 200 with the job; 500 ``DAPR_SCHEDULER_GET_JOB``
  ("failed to get job") when there is no such job, as daprd answers.
- ``DELETE .../jobs/<name>``: 204, also for a name that is not there.
- Trigger: at ``dueTime`` the sidecar ``POST``s ``<app>/job/<name>`` with the
  job's ``data`` as the JSON body (``dapr-api-token`` with an app token). A
  2xx answer is success, 404 is a non-retriable failure (not retried), any
  other answer or none at all is retried by the job's ``failurePolicy``:
  ``{"constant": {"interval": "5s", "maxRetries": 3}}`` (``maxRetries``
  absent: forever) or ``{"drop": {}}``. Without one, Dapr's default: constant,
  1 s, 3 retries. Triggers are at least once: :meth:`JobsDouble.trigger_again`
  repeats one, as a Scheduler failing over would.
- ``dueTime`` and ``ttl``: an RFC 3339 time or a Go duration from now
  (``"1h30m"``, ``"500ms"``); a job past its ``ttl`` is deleted untriggered.

Not the Scheduler (a double): only one-shot jobs (``dueTime`` with at most one
repeat); ``schedule`` (cron, ``@every``) is refused with 400; jobs live in
memory and go when the double stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
from aiohttp import web

from todo_devstack.dapr_delivery import App

logger = logging.getLogger(__name__)

TriggerOutcome = Literal["succeeded", "not-found", "failed", "given-up", "expired"]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class BadJob(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """A Go duration string (``time.ParseDuration``): ``"1h30m"``, ``"2.5s"``, ``"500ms"``."""
    if not text or _DURATION.sub("", text) != "":
        raise BadJob(f"not a duration: {text!r}")
    return timedelta(seconds=sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text)))


def parse_time(text: str, *, now: datetime) -> datetime:
    """RFC 3339 or a Go duration from ``now`` (what ``dueTime`` and ``ttl`` accept)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return now + parse_duration(text)
    if moment.tzinfo is None:
        raise BadJob(f"a point in time needs its offset (RFC 3339): {text!r}")
    return moment


@dataclass(frozen=True, kw_only=True)
class FailurePolicy:
    interval: float | None = 1.0  # None: drop
    max_retries: int | None = 3  # None: forever

    @classmethod
    def of(cls, wire: Any) -> FailurePolicy:
        if wire is None:
            return cls()
        if not isinstance(wire, dict) or len(wire) != 1:
            raise BadJob("failurePolicy holds exactly one of constant, drop")
        if "drop" in wire:
            return cls(interval=None, max_retries=0)
        constant = wire.get("constant")
        if not isinstance(constant, dict):
            raise BadJob("failurePolicy: unknown policy")
        interval = parse_duration(str(constant.get("interval", "1s"))).total_seconds()
        retries = constant.get("maxRetries")
        return cls(interval=interval, max_retries=None if retries is None else int(retries))


@dataclass(kw_only=True)
class Job:
    name: str
    due: datetime
    data: Any
    wire: dict[str, Any]
    expires: datetime | None
    policy: FailurePolicy
    attempts: int = 0
    next_try: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.next_try = self.due


@dataclass(frozen=True, kw_only=True)
class Trigger:
    name: str
    due: datetime
    at: datetime
    outcome: TriggerOutcome
    status: int | None


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"errorCode": code, "message": message, "details": []}, status=status)


class JobsDouble:
    """Jobs kept by name; a loop triggers each at its time on the app (call from the double's loop)."""

    def __init__(
        self,
        *,
        app: App | None = None,
        now: Callable[[], datetime] | None = None,
        trigger_timeout: float = 60.0,
    ) -> None:
        self.app = app
        # The Scheduler's clock: the wall clock, or a test's (then call :meth:`wake` when it moves).
        self._now = now or (lambda: datetime.now(UTC))
        self._loop: asyncio.AbstractEventLoop | None = None
        self.jobs: dict[str, Job] = {}
        self.triggers: list[Trigger] = []
        self.scheduled = 0  # POSTs accepted
        self.schedule_requests = 0  # POSTs received, refused ones too
        self.names: set[str] = set()  # every name ever scheduled
        self.available = True
        self._timeout = aiohttp.ClientTimeout(total=trigger_timeout)
        self._changed = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def routes(self, app: web.Application) -> None:
        for version in ("v1.0-alpha1", "v1.0"):
            app.router.add_post(f"/{version}/jobs/{{name}}", self._schedule)
            app.router.add_get(f"/{version}/jobs/{{name}}", self._get)
            app.router.add_delete(f"/{version}/jobs/{{name}}", self._delete)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession()
        self._loop_task = asyncio.create_task(self._run(), name="dapr-double-scheduler")

    async def stop(self) -> None:
        for task in [self._loop_task, *self._in_flight]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """Look at the jobs again now (thread-safe: a test's clock moved)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._changed.set)

    # Faults and inspection.

    def go_down(self) -> None:
        """The Scheduler is unreachable: the API answers 500 and nothing triggers until :meth:`come_up`."""
        self.available = False

    def come_up(self) -> None:
        self.available = True
        self._changed.set()

    def forget(self, name: str) -> bool:
        """Lose a job behind its owner's back (an admin, a Scheduler's lost state)."""
        return self.jobs.pop(name, None) is not None

    async def trigger_again(self, name: str, data: Any) -> int | None:
        """Trigger a job once more (at least once: a Scheduler failover repeats triggers)."""
        return await self._post_trigger(name, data)

    def report(self) -> dict[str, Any]:
        """What a benchmark in another process reads (``GET /_devstack/jobs``)."""
        return {
            "jobs": len(self.jobs),
            "stored_bytes": self.stored_bytes(),
            "scheduled": self.scheduled,
            "schedule_requests": self.schedule_requests,
            "names": len(self.names),
            "triggers": [
                {"name": t.name, "outcome": t.outcome, "lag": (t.at - t.due).total_seconds()}
                for t in self.triggers
            ],
        }

    def stored_bytes(self) -> int:
        """The jobs' wire size: what the Scheduler keeps per job (about, without its own fields)."""
        return sum(len(json.dumps(job.wire, separators=(",", ":"))) for job in self.jobs.values())

    # The API.

    async def _schedule(self, request: web.Request) -> web.Response:
        self.schedule_requests += 1
        if not self.available:
            return _error(500, "DAPR_SCHEDULER_SCHEDULE_JOB", "failed to schedule job: scheduler unavailable")
        name = request.match_info["name"].strip()
        try:
            body = await request.json()
            job = self._job(name, body)
        except (ValueError, TypeError) as error:
            return _error(400, "DAPR_SCHEDULER_JOB_INVALID", str(error))
        if name in self.jobs and body.get("overwrite") is not True:
            return _error(409, "DAPR_SCHEDULER_JOB_EXISTS", f"job {name} already exists")
        self.jobs[name] = job
        self.names.add(name)
        self.scheduled += 1
        self._changed.set()
        return web.Response(status=204)

    def _job(self, name: str, body: Any) -> Job:
        if not isinstance(body, dict):
            raise BadJob("the body is a JSON object")
        if "name" in body:
            raise BadJob("the job's name goes in the URL, not in the body")
        if body.get("schedule"):
            raise BadJob("the double keeps one-shot jobs only (dueTime)")
        if not body.get("dueTime"):
            raise BadJob("at least one of schedule or dueTime must be provided")
        if int(body.get("repeats", 1)) > 1:
            raise BadJob("the double keeps one-shot jobs only (repeats <= 1)")
        now = self._now()
        ttl = body.get("ttl")
        return Job(
            name=name,
            due=parse_time(str(body["dueTime"]), now=now),
            data=body.get("data"),
            wire={key: value for key, value in body.items() if key != "overwrite"},
            expires=parse_time(str(ttl), now=now) if ttl else None,
            policy=FailurePolicy.of(body.get("failurePolicy")),
        )

    async def _get(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        job = self.jobs.get(name) if self.available else None
        if job is None:
            reason = "job not found" if self.available else "scheduler unavailable"
            return _error(500, "DAPR_SCHEDULER_GET_JOB", f"failed to get job due to: {reason}")
        return web.json_response({"name": name, **job.wire})

    async def _delete(self, request: web.Request) -> web.Response:
        if not self.available:
            return _error(500, "DAPR_SCHEDULER_DELETE_JOB", "failed to delete job: scheduler unavailable")
        self.jobs.pop(request.match_info["name"], None)
        return web.Response(status=204)

    # Triggers.

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            now = self._now()
            wait = 3600.0
            if self.available:
                for job in list(self.jobs.values()):
                    if job.expires is not None and job.expires <= now:
                        self.jobs.pop(job.name, None)
                        self.triggers.append(
                            Trigger(name=job.name, due=job.due, at=now, outcome="expired", status=None)
                        )
                    elif job.next_try <= now:
                        job.next_try = datetime.max.replace(tzinfo=UTC)  # in hand
                        task = asyncio.create_task(self._fire(job))
                        self._in_flight.add(task)
                        task.add_done_callback(self._in_flight.discard)
                    else:
                        wait = min(wait, (job.next_try - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(wait, 0.001))

    async def _fire(self, job: Job) -> None:
        status = await self._post_trigger(job.name, job.data)
        now = self._now()
        job.attempts += 1
        outcome: TriggerOutcome
        if status is not None and 200 <= status < 300:
            outcome = "succeeded"
        elif status == 404:
            outcome = "not-found"
        elif job.policy.interval is None or (
            job.policy.max_retries is not None and job.attempts > job.policy.max_retries
        ):
            outcome = "given-up"
        else:
            outcome = "failed"
        self.triggers.append(Trigger(name=job.name, due=job.due, at=now, outcome=outcome, status=status))
        if self.jobs.get(job.name) is not job:
            return  # deleted or replaced while it was being triggered: nothing more to do for it
        if outcome == "failed":
            assert job.policy.interval is not None
            job.next_try = now + timedelta(seconds=job.policy.interval)
        else:
            self.jobs.pop(job.name, None)
        self._changed.set()

    async def _post_trigger(self, name: str, data: Any) -> int | None:
        """The app's answer to ``POST /job/<name>``; None when it did not answer."""
        if self.app is None or self._session is None:
            return None
        headers = {"Content-Type": "application/json"}
        if self.app.token is not None:
            headers["dapr-api-token"] = self.app.token
        began = time.monotonic()
        try:
            async with self._session.post(
                f"{self.app.url}/job/{name}",
                data=json.dumps(data) if data is not None else b"",
                headers=headers,
                timeout=self._timeout,
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.info("job %s: trigger failed after %.2fs (%s)", name, time.monotonic() - began, error)
            return None
