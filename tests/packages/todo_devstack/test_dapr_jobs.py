"""The Dapr double's Jobs API keeps the contract daprd keeps (dapr_jobs's docstring).

Requests go over real HTTP, as daprd's own integration tests send them
(``tests/integration/suite/daprd/jobs/http``: the same status codes and error
codes); a small aiohttp app stands for the app the sidecar calls back, with
scripted answers per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from todo_devstack.dapr import App, DaprDouble
from todo_devstack.dapr_jobs import BadJob, parse_duration, parse_time

TOKEN = "the-app-token-0123456789"


@dataclass
class JobApp:
    """The app behind the sidecar: answers ``POST /job/<name>`` from a script, the last one repeated."""

    answers: list[int] = field(default_factory=lambda: [200])
    calls: list[tuple[str, Any, str | None]] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/job/{name}", self._job)
        return app

    async def _job(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append(
            (
                request.match_info["name"],
                json.loads(body) if body else None,
                request.headers.get("dapr-api-token"),
            )
        )
        self.called.set()
        status = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return web.Response(status=status)


@contextlib.asynccontextmanager
async def sidecar(job_app: JobApp) -> AsyncIterator[DaprDouble]:
    server = TestServer(job_app.app(), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    try:
        async with DaprDouble(job_app=App(url=url, token=TOKEN)) as double:
            yield double
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def call(
    session: aiohttp.ClientSession, method: str, double: DaprDouble, name: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(
        method,
        f"{double.url}/v1.0-alpha1/jobs/{name}",
        data=None if body is None else json.dumps(body),
        headers={"Content-Type": "application/json"},
    ) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None


def soon(seconds: float = 0.2) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def until(condition: Any, *, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110  # a deadline on the double's own loop
            await asyncio.sleep(0.01)


async def test_schedule_get_overwrite_and_delete_answer_as_daprd(session: aiohttp.ClientSession) -> None:
    async with sidecar(JobApp()) as double:
        later = {"dueTime": "1h", "data": {"n": 1}}
        assert await call(session, "POST", double, "j1", later) == (204, None)
        status, job = await call(session, "GET", double, "j1")
        assert (status, job["name"], job["data"], job["dueTime"]) == (200, "j1", {"n": 1}, "1h")
        status, error = await call(session, "POST", double, "j1", later)
        assert status == 409, "the name is taken and overwrite is not true"
        assert await call(session, "POST", double, "j1", {**later, "data": {"n": 2}, "overwrite": True}) == (
            204,
            None,
        )
        assert (await call(session, "GET", double, "j1"))[1]["data"] == {"n": 2}
        assert await call(session, "DELETE", double, "j1") == (204, None)
        assert await call(session, "DELETE", double, "j1") == (204, None), (
            "deleting what is not there is no error"
        )
        status, error = await call(session, "GET", double, "j1")
        assert (status, error["errorCode"]) == (500, "DAPR_SCHEDULER_GET_JOB")
        assert "failed to get job" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"data": 1},
        {"name": "j2", "dueTime": "1h"},
        {"dueTime": "soonish"},
        {"dueTime": "2026-12-09T10:00:00"},
    ],
    ids=["empty", "no-time", "name-in-body", "bad-duration", "no-offset"],
)
async def test_malformed_jobs_are_refused_with_400(session: aiohttp.ClientSession, body: Any) -> None:
    async with sidecar(JobApp()) as double:
        status, error = await call(session, "POST", double, "j2", body)
        assert status == 400
        assert error["errorCode"]
        assert double.jobs.jobs == {}


async def test_a_job_triggers_once_at_its_time_with_its_data_and_the_app_token(
    session: aiohttp.ClientSession,
) -> None:
    app = JobApp()
    async with sidecar(app) as double:
        await call(session, "POST", double, "j3", {"dueTime": soon(), "data": {"uid": "u"}})
        await until(lambda: double.jobs.triggers)
        await asyncio.sleep(0.2)
    assert app.calls == [("j3", {"uid": "u"}, TOKEN)]
    (trigger,) = double.jobs.triggers
    assert trigger.outcome == "succeeded"
    assert trigger.at >= trigger.due
    assert double.jobs.jobs == {}, "a one-shot job is gone once it triggered"


async def test_failures_are_retried_by_the_failure_policy_and_404_is_final(
    session: aiohttp.ClientSession,
) -> None:
    app = JobApp(answers=[500, 503, 200])
    retried = {"constant": {"interval": "50ms", "maxRetries": 5}}
    async with sidecar(app) as double:
        await call(session, "POST", double, "j4", {"dueTime": soon(0.05), "failurePolicy": retried})
        await until(lambda: [t.outcome for t in double.jobs.triggers][-1:] == ["succeeded"])
        assert [t.outcome for t in double.jobs.triggers] == ["failed", "failed", "succeeded"]
        gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(double.jobs.triggers)]
        assert min(gaps) >= 0.05, "the interval is kept"

        app.answers = [404]
        await call(session, "POST", double, "j5", {"dueTime": soon(0.05), "failurePolicy": retried})
        await until(lambda: double.jobs.triggers[-1].name == "j5")
        await asyncio.sleep(0.2)
        assert [t.outcome for t in double.jobs.triggers if t.name == "j5"] == ["not-found"]


async def test_spent_retries_give_up_and_the_default_policy_is_three_retries(
    session: aiohttp.ClientSession,
) -> None:
    app = JobApp(answers=[500])
    async with sidecar(app) as double:
        await call(
            session,
            "POST",
            double,
            "j6",
            {"dueTime": soon(0.05), "failurePolicy": {"constant": {"interval": "10ms", "maxRetries": 2}}},
        )
        await until(lambda: any(t.outcome == "given-up" for t in double.jobs.triggers))
        assert [t.outcome for t in double.jobs.triggers] == ["failed", "failed", "given-up"]
        await call(session, "POST", double, "j7", {"dueTime": soon(0.05)})  # Dapr's default: 1 s, 3 retries
        await until(lambda: any(t.name == "j7" for t in double.jobs.triggers))
        assert double.jobs.jobs["j7"].policy.max_retries == 3


async def test_a_scheduler_that_is_down_refuses_and_triggers_nothing_until_it_is_back(
    session: aiohttp.ClientSession,
) -> None:
    app = JobApp()
    async with sidecar(app) as double:
        await call(session, "POST", double, "j8", {"dueTime": soon(0.1)})
        double.jobs.go_down()
        status, error = await call(session, "POST", double, "j9", {"dueTime": soon(0.1)})
        assert (status, error["errorCode"]) == (500, "DAPR_SCHEDULER_SCHEDULE_JOB")
        await asyncio.sleep(0.4)
        assert app.calls == []
        double.jobs.come_up()
        await until(lambda: app.calls)
        assert [name for name, _, _ in app.calls] == ["j8"]


async def test_a_job_past_its_ttl_is_dropped_untriggered(session: aiohttp.ClientSession) -> None:
    app = JobApp()
    async with sidecar(app) as double:
        double.jobs.go_down()
        double.jobs.available = True
        await call(session, "POST", double, "j10", {"dueTime": soon(0.3), "ttl": soon(0.1)})
        await until(lambda: double.jobs.triggers)
    assert [t.outcome for t in double.jobs.triggers] == ["expired"]
    assert app.calls == []


def test_durations_and_times_read_as_go_and_rfc3339() -> None:
    now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1.5s") == timedelta(seconds=1.5)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    assert parse_time("2026-12-05T10:00:00Z", now=now) == now + timedelta(hours=1)
    assert parse_time("45s", now=now) == now + timedelta(seconds=45)
    for bad in ("", "5", "5 s", "1d"):
        with pytest.raises(BadJob):
            parse_duration(bad)
