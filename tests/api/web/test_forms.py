"""The page's forms as the API's bodies: the simple pattern's RRULE, the due time's zone, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dateutil import rrule as dateutil_rrule

from todo_operator.api.web import forms


def values(*pairs: tuple[str, str]) -> forms.Values:
    return forms.Values(list(pairs))


@pytest.mark.parametrize(
    ("pairs", "rule"),
    [
        ([("every", "daily")], "FREQ=DAILY;INTERVAL=1"),
        (
            [("every", "weekly"), ("interval", "2"), ("weekday", "MO"), ("weekday", "TH")],
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
        ),
        ([("every", "monthly"), ("on", "day"), ("month_day", "-1")], "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=-1"),
        (
            [("every", "monthly"), ("on", "position"), ("position", "-1"), ("position_weekday", "FR")],
            "FREQ=MONTHLY;INTERVAL=1;BYDAY=-1FR",
        ),
        (
            [("every", "yearly"), ("month_day", "24"), ("month", "12")],
            "FREQ=YEARLY;INTERVAL=1;BYMONTHDAY=24;BYMONTH=12",
        ),
        # Weekdays belong to the weekly pattern only: left over from switching units, they are not sent.
        ([("every", "daily"), ("weekday", "MO")], "FREQ=DAILY;INTERVAL=1"),
    ],
)
def test_the_simple_pattern_is_an_rrule_dateutil_reads(pairs: list[tuple[str, str]], rule: str) -> None:
    written = forms.simple_rule(values(*pairs))
    assert written == rule
    # Someone else's parser reads it as RFC 5545.
    dateutil_rrule.rrulestr(f"RRULE:{written}", dtstart=datetime(2027, 1, 1, 9, tzinfo=UTC))


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([("every", "hourly")], "every"),
        ([("every", "daily"), ("interval", "0")], "interval"),
        ([("every", "daily"), ("interval", "1e3")], "interval"),
        ([("every", "monthly"), ("month_day", "32")], "month_day"),
        (
            [("every", "monthly"), ("on", "position"), ("position", "5"), ("position_weekday", "FR")],
            "position",
        ),
    ],
)
def test_a_simple_pattern_out_of_range_is_refused_at_its_field(
    pairs: list[tuple[str, str]], field: str
) -> None:
    with pytest.raises(forms.FormInvalid) as refused:
        forms.simple_rule(values(*pairs))
    assert list(refused.value.errors) == [field]


def test_the_due_time_is_read_in_the_browsers_zone() -> None:
    task = forms.task_create(
        values(("title", "Call mum"), ("due", "2027-03-28T20:30"), ("tz", "Europe/Berlin"), ("remind", "1w"))
    )
    assert task.due_at == datetime(2027, 3, 28, 18, 30, tzinfo=UTC)  # summer time since that morning
    assert [r.to_wire() for r in task.reminders] == [{"before": "7d"}]


def test_an_unknown_browser_zone_is_utc() -> None:
    task = forms.task_create(values(("title", "x"), ("due", "2027-01-01T10:00"), ("tz", "Mars/Olympus")))
    assert task.due_at == datetime(2027, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([("title", "")], "title"),
        ([("title", "a\x00b")], "title"),
        ([("title", "x"), ("due", "tomorrow")], "due"),
        ([("title", "x"), ("remind", "1h")], "reminders"),
        ([("title", "x"), ("due", "2027-01-01T10:00"), ("remind_custom", "soon")], "reminders"),
        ([("title", "x"), ("priority", "whenever")], "priority"),
    ],
)
def test_a_refused_task_form_names_the_field(pairs: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(forms.FormInvalid) as refused:
        forms.task_create(values(*pairs))
    assert field in refused.value.errors


def test_the_advanced_form_sends_the_rule_as_typed_and_the_count_as_a_number() -> None:
    form = values(
        ("title", "x"),
        ("mode", "advanced"),
        ("rrule", "FREQ=MONTHLY;BYDAY=-1FR"),
        ("every", "daily"),  # the simple pattern's fields, hidden: not used
        ("start", "2027-01-01T09:00"),
        ("time_zone", "Europe/Berlin"),
        ("ends", "count"),
        ("count", "12"),
    )
    schedule = forms.recurring_create(form).schedule
    assert (schedule.rrule, schedule.count, schedule.time_zone) == (
        "FREQ=MONTHLY;BYDAY=-1FR",
        12,
        "Europe/Berlin",
    )
    with pytest.raises(forms.FormInvalid) as refused:
        forms.recurring_create(forms.Values([*form.pairs[:-1], ("count", "twelve")]))
    assert list(refused.value.errors) == ["count"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("schedule.rrule", "rrule"),
        ("spec.schedule.timeZone", "time_zone"),
        ("taskTemplate.title", "title"),
        ("spec.taskTemplate.reminders[0].before", "reminders"),
        ("due_at", "due"),
    ],
)
def test_a_services_refusal_lands_at_the_forms_field(path: str, field: str) -> None:
    assert list(forms.refusal_fields([(path.replace("[0]", ".0"), "no")])) == [field]
