"""F21: PostgreSQL restarted under a running operator and REST API.

A PostgreSQL server of the test's own is stopped (every connection cut) and
started again on the same port while work goes on: RecurringTasks are
created, an occurrence is completed and reminders fall due. The operator's
pool notices the dead connections (it checks them before use) and
reconnects; a handler waits for a connection meanwhile (up to the pool's 30
s, then ``PoolTimeout``, an ``OperationalError``, is retried as transient);
the scheduler and the outbox relay retry. ``/metrics`` keeps answering in
time for a scrape and counts the record it could not read; the REST API
answers 503 with ``Retry-After`` until the database is back, then serves
again. Every change is one transaction, so nothing is half-written: the
record ends whole. Events may be published twice (the relay is at least
once), never lost.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx2 as httpx
import pytest

from tests.api.harness import ApiThread, api_settings, token
from tests.faults.apiserver.conftest import NAMESPACE, OWNER, Stack, running_stack, tomorrow_at_nine
from tests.faults.record import assert_nothing_lost_nothing_twice
from todo_devstack import postgres
from todo_operator.store import schema

REMINDER = [{"before": "1h"}]


@dataclass
class Restartable:
    stack: Stack
    database: postgres.ThrowawayPostgres
    rest: httpx.Client


@pytest.fixture
def restartable(tmp_path: pathlib.Path) -> Iterator[Restartable]:
    """The stack on a PostgreSQL server of its own (not the session's: this one gets restarted)."""
    with postgres.ThrowawayPostgres(base_dir=tmp_path / "postgres") as database:
        url = database.create_database("faults")
        schema.migrate_up(url)
        with running_stack(url) as stack:
            settings = api_settings(NAMESPACE)
            with ApiThread(settings, database_url=url, kube_api_url=stack.api.url, clock=stack.clock) as api:
                headers = {"Authorization": f"Bearer {token(OWNER)}"}
                with httpx.Client(base_url=api.url, headers=headers, timeout=20) as rest:
                    yield Restartable(stack=stack, database=database, rest=rest)


def listed(rest: httpx.Client) -> httpx.Response:
    return rest.get("/api/v1/tasks")


def test_a_postgres_restart_loses_nothing_and_everyone_reconnects(
    restartable: Restartable, caplog: pytest.LogCaptureFixture
) -> None:
    stack, database, rest = restartable.stack, restartable.database, restartable.rest
    caplog.set_level(logging.WARNING, logger="psycopg.pool")
    stack.create_recurring_task("plants")
    for name in ("bins", "post"):
        stack.create_recurring_task(name, reminders=REMINDER)
        stack.wait_reminders_pending(name)
    first = stack.wait_occurrence("plants", 1)["status"]["currentTask"]
    assert listed(rest).status_code == 200

    database.stop()  # fast shutdown: every connection is cut
    down = listed(rest)
    assert down.status_code == 503
    assert down.headers["Retry-After"] == "5"
    assert down.headers["Content-Type"] == "application/problem+json"
    # Work goes on meanwhile: new RecurringTasks, a completion, reminders falling due.
    for name in ("dishes", "laundry"):
        stack.create_recurring_task(name, reminders=REMINDER)
    stack.complete(first)
    stack.clock.set(tomorrow_at_nine() - timedelta(minutes=30))
    stack.wait_for(
        "the pools trying to reconnect",
        lambda: any("error connecting in 'pool-" in r.getMessage() for r in caplog.records),
    )
    # /metrics still answers in time for a scrape, and says that the record cannot be read.
    started = time.monotonic()
    assert stack.metric("todo_record_read_errors_total") >= 1
    assert time.monotonic() - started < 8.0
    assert all(operator.alive for operator in stack.operators)
    database.start()  # same port, same data

    stack.wait_for("the REST API serving again", lambda: listed(rest).status_code == 200)
    stack.wait_occurrence("plants", 2)
    assert_nothing_lost_nothing_twice(
        stack.sources,
        NAMESPACE,
        occurrences={"plants": 2, "bins": 1, "post": 1, "dishes": 1, "laundry": 1},
        reminders_sent=4,  # bins, post (due during the outage), dishes, laundry (created during it)
        republished=True,  # at least once: a batch published as the database went may go again
    )
    assert all(operator.alive for operator in stack.operators)
