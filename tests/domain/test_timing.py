"""Reminder timing, names and the catch-up policy (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from todo_operator.domain import timing
from todo_operator.domain.resources import ReminderOffset

DUE = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
POLICY = timing.CatchUpPolicy()


def test_before_counts_back_from_the_due_time() -> None:
    assert timing.fire_at(ReminderOffset(before="1h30m"), due_at=DUE) == DUE - timedelta(minutes=90)


def test_at_is_an_instant_in_utc() -> None:
    at = datetime.fromisoformat("2026-12-09T18:00:00+01:00")
    assert timing.fire_at(ReminderOffset(at=at), due_at=None) == datetime(2026, 12, 9, 17, 0, tzinfo=UTC)


def test_before_without_a_due_time_is_an_error() -> None:
    with pytest.raises(timing.ReminderError, match="no dueAt"):
        timing.fire_at(ReminderOffset(before="1h"), due_at=None)


def test_names_are_stable_and_bounded() -> None:
    assert timing.reminder_name("passport", ReminderOffset(before="24h")) == "passport-before-24h"
    at = ReminderOffset(at=datetime(2026, 12, 9, 17, 0, tzinfo=UTC))
    assert timing.reminder_name("passport", at) == "passport-at-20261209t1700"
    long = timing.cronjob_name("r" * 200)
    assert len(long) <= timing.MAX_CRONJOB_NAME_LENGTH
    assert long == timing.cronjob_name("r" * 200)


def test_cron_schedule_is_the_minute_in_utc() -> None:
    fire = datetime.fromisoformat("2026-12-09T18:05:40+01:00")
    assert timing.cron_schedule(fire) == "5 17 9 12 *"


@pytest.mark.parametrize(
    ("lateness", "decision"),
    [
        (timedelta(minutes=-10), "wait"),
        (timedelta(seconds=-59), "send"),  # a CronJob starts at the top of the minute
        (timedelta(0), "send"),
        (timedelta(minutes=5), "send"),
        (timedelta(minutes=6), "send-late"),
        (timedelta(hours=24), "send-late"),
        (timedelta(hours=24, seconds=1), "missed"),
        (timedelta(days=400), "missed"),
    ],
)
def test_catch_up_policy(lateness: timedelta, decision: str) -> None:
    assert timing.catch_up(DUE, now=DUE + lateness, policy=POLICY) == decision
