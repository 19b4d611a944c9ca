"""F19: the API server unavailable for a while; the operator backs off, does not crash, and resumes.

During the outage every request is refused (503, or the connection dropped
as when the API server's process dies) and Kopf's watches are cut, while
time moves on: reminders fall due (the operator sends them from PostgreSQL
and must then tell the API server) and a RecurringTask created just before
the outage still needs its occurrence. When the API server is back, the
record must be whole, and the operator must have knocked at a modest rate,
not in a tight loop.

An outage longer than Kopf's own retries (54 s) used to leave the operator
running with its watches given up, serving nothing until restarted; the
operator now retries API requests for as long as an outage lasts
(``handlers.EndlessBackoffs``). That is tested with the retry schedule
shortened, so that a few seconds outlast it many times over.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sized
from datetime import timedelta

import kopf
import pytest

from tests.faults.apiserver.conftest import NAMESPACE, Stack, running_stack, tomorrow_at_nine
from tests.faults.record import assert_nothing_lost_nothing_twice
from todo_operator.operator import handlers
from todo_operator.operator.settings import OperatorSettings

REMINDER = [{"before": "1h"}]
OUTAGE_SECONDS = 2.0
# Retries are spaced (Kopf's API backoff 1, 1, 2, 3 ... s; handlers every retry_delay_seconds;
# the scheduler every 5 s): a handful of requests a second. A crash loop would be hundreds.
MAX_REQUESTS_PER_SECOND = 20


@pytest.mark.parametrize("status", [503, None], ids=["503", "connections-dropped"])
def test_the_operator_waits_out_an_api_outage_and_loses_nothing(stack: Stack, status: int | None) -> None:
    names = ("plants", "bins")
    for name in names:
        stack.create_recurring_task(name, reminders=REMINDER)
    for name in names:
        stack.wait_reminders_pending(name)
    stack.create_recurring_task("post", reminders=REMINDER)  # its handling meets the outage

    outage = stack.faults(lambda f: f.begin_outage(status=status))
    started = time.monotonic()
    stack.clock.set(tomorrow_at_nine() - timedelta(minutes=30))  # the first reminders fall due
    # Sent from PostgreSQL while the API server is down: the e-mails go out regardless.
    stack.smtp.wait_for(len(names))
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
    assert all(operator.alive for operator in stack.operators)
    refused = outage.refused
    stack.faults(lambda f: f.end_outage())
    elapsed = time.monotonic() - started

    assert refused > 0
    assert refused / elapsed < MAX_REQUESTS_PER_SECOND, f"{refused} requests refused in {elapsed:.1f}s"
    stack.wait_occurrence("post", 1)
    assert_nothing_lost_nothing_twice(
        stack.sources, NAMESPACE, occurrences={"plants": 1, "bins": 1, "post": 1}, reminders_sent=3
    )
    assert all(operator.alive for operator in stack.operators)


def test_kopf_never_runs_out_of_retries_for_the_api_server() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure_kopf(settings, OperatorSettings(database_url="postgresql://unused"))
    backoffs = settings.networking.error_backoffs
    assert not isinstance(backoffs, Sized)  # Kopf gives up after len(backoffs) retries
    assert not isinstance(backoffs, (int, float))
    waits = list(itertools.islice(backoffs, 1_000))
    assert waits[: len(handlers.API_RETRY_BACKOFFS)] == list(handlers.API_RETRY_BACKOFFS)
    assert max(waits) == handlers.API_RETRY_CAP_SECONDS
    assert list(itertools.islice(backoffs, 3)) == waits[:3]  # every request starts the schedule afresh


def test_an_outage_longer_than_the_retry_schedule_is_survived(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "API_RETRY_BACKOFFS", (0.2, 0.2))
    monkeypatch.setattr(handlers, "API_RETRY_CAP_SECONDS", 0.5)
    with running_stack(database_url) as stack:
        stack.create_recurring_task("plants")
        stack.wait_occurrence("plants", 1)
        outage = stack.faults(lambda f: f.begin_outage(status=503))
        time.sleep(OUTAGE_SECONDS)  # the schedule (0.4 s) outlasted several times over
        stack.faults(lambda f: f.end_outage())
        assert outage.refused > 0

        stack.create_recurring_task("bins")  # seen only if the watches are still there
        stack.wait_occurrence("bins", 1)
        assert_nothing_lost_nothing_twice(stack.sources, NAMESPACE, occurrences={"plants": 1, "bins": 1})
        assert all(operator.alive for operator in stack.operators)
