"""The models users write: what they accept, what they refuse, and how they say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from todo_operator.domain import conditions, occurrences, resources, tasks

TEMPLATE = {"title": "Weekly review", "owner": "alice@example.com"}


def _recurring(**schedule: Any) -> dict[str, Any]:
    return {"schedule": {"start": "2026-12-04T16:00:00", **schedule}, "taskTemplate": TEMPLATE}


def _error(model: type[resources.Model], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return resources.describe_validation_error(caught.value)


def test_a_valid_recurring_task_parses_with_defaults() -> None:
    spec = resources.RecurringTaskSpec.model_validate(_recurring(every="weekly", interval=2))
    assert spec.anchor == "schedule"
    assert spec.history_limit == 5
    assert spec.schedule.time_zone == "UTC"
    assert spec.task_template.priority == "medium"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _recurring(every="weekly", rrule="FREQ=DAILY"),
            "spec.schedule: set exactly one of 'rrule' or 'every'",
        ),
        (_recurring(), "spec.schedule: set exactly one of 'rrule' or 'every'"),
        (
            _recurring(every="fortnightly"),
            "spec.schedule.every: Input should be 'daily', 'weekly', 'monthly' or 'yearly'",
        ),
        (
            _recurring(every="daily", interval=-1),
            "spec.schedule.interval: Input should be greater than or equal to 1",
        ),
        (
            _recurring(every="daily", timeZone="Mars/Olympus"),
            "spec.schedule.timeZone: unknown time zone 'Mars/Olympus'"
            " (use an IANA name such as 'Europe/Berlin')",
        ),
        (
            {
                "schedule": {"start": "2026-12-04T16:00:00", "every": "daily"},
                "taskTemplate": {"owner": "a@b.c"},
            },
            "spec.taskTemplate.title: Field required",
        ),
    ],
)
def test_bad_recurring_tasks_are_refused_with_the_field_named(data: dict[str, Any], message: str) -> None:
    assert _error(resources.RecurringTaskSpec, data) == message


def test_before_reminders_need_a_due_time() -> None:
    data = {"title": "x", "owner": "a@example.com", "reminders": [{"before": "1h"}]}
    assert _error(resources.TaskSpec, data) == "spec: reminders with 'before' need spec.dueAt"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("1h30m", timedelta(minutes=90)), ("2d", timedelta(days=2))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert resources.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1x", "-1h", "1m1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        resources.parse_duration(text)


def test_occurrence_names_are_deterministic_and_valid() -> None:
    due = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    assert occurrences.occurrence_name("weekly-review", due) == "weekly-review-20261204t1500"
    long_name = "a" * 250
    shortened = occurrences.occurrence_name(long_name, due)
    assert len(shortened) <= 253
    assert shortened == occurrences.occurrence_name(long_name, due)
    assert shortened != occurrences.occurrence_name("a" * 249 + "b", due)


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("completed", "due_at", "phase"),
    [
        (True, NOW - timedelta(days=1), "Completed"),
        (False, NOW - timedelta(seconds=1), "Overdue"),
        (False, NOW, "Overdue"),
        (False, NOW + timedelta(seconds=1), "Open"),
        (False, None, "Open"),
    ],
)
def test_task_phase(completed: bool, due_at: datetime | None, phase: str) -> None:
    spec = resources.TaskSpec(title="x", owner="a@example.com", completed=completed, due_at=due_at)
    assert tasks.task_phase(spec, now=NOW) == phase


def test_condition_transition_time_moves_only_when_status_flips() -> None:
    first = conditions.with_condition(
        [], type_="Ready", status="True", reason="Open", message="", now=NOW, generation=1
    )
    later = NOW + timedelta(hours=1)
    same = conditions.with_condition(
        first, type_="Ready", status="True", reason="Overdue", message="late", now=later, generation=2
    )
    flipped = conditions.with_condition(
        same, type_="Ready", status="False", reason="InvalidSpec", message="bad", now=later, generation=3
    )
    assert same[0].last_transition_time == NOW
    assert same[0].reason == "Overdue"
    assert flipped[0].last_transition_time == later
    assert len(flipped) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _recurring(every="daily", start="2026-13-45T99:99"),
            "spec.schedule.start: '2026-13-45T99:99' is not a valid date and time",
        ),
        (
            {"title": "x\x00y", "owner": "a@example.com"},
            "spec.title: must be one line: no line breaks, tabs or other control characters"
            " (found U+0000 at position 2)",
        ),
    ],
    ids=["impossible-date", "nul-in-title"],
)
def test_values_postgresql_or_the_calendar_cannot_hold_are_refused(
    data: dict[str, Any], message: str
) -> None:
    model = resources.RecurringTaskSpec if "schedule" in data else resources.TaskSpec
    assert _error(model, data) == message


def test_an_absurdly_long_duration_is_a_value_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="too long a duration"):
        resources.parse_duration("99999999999999d")
