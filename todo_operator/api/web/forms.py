"""The page's forms as the REST API's request bodies, and refusals back at the fields.

Pure: a form is the list of (name, value) pairs the browser posted; what
comes out is the body the API takes (``TaskCreate``, ``RecurringTaskCreate``
...), validated by the same models, so the page refuses exactly what the API
refuses. The simple pattern (every N days/weeks on chosen weekdays, months on
a day or "the last Friday", years) is written as an RRULE, so the preview
and the series the operator runs are one rule.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from todo_operator.api import models as m

Form = Sequence[tuple[str, str]]

# The offsets the form offers as checkboxes, as the product's frontend did.
REMINDER_CHOICES: tuple[tuple[str, str], ...] = (
    ("1h", "1 hour before"),
    ("1d", "1 day before"),
    ("1w", "1 week before"),
)
_CHOICE_DURATIONS = {"1h": "1h", "1d": "1d", "1w": "7d"}
WEEKDAYS: tuple[tuple[str, str], ...] = (
    ("MO", "Monday"),
    ("TU", "Tuesday"),
    ("WE", "Wednesday"),
    ("TH", "Thursday"),
    ("FR", "Friday"),
    ("SA", "Saturday"),
    ("SU", "Sunday"),
)
POSITIONS: tuple[tuple[str, str], ...] = (
    ("1", "first"),
    ("2", "second"),
    ("3", "third"),
    ("4", "fourth"),
    ("-1", "last"),
)
_FREQUENCIES = {"daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY", "yearly": "YEARLY"}

# A refusal's location in the API's body → the form field that shows it.
_FIELD_OF: dict[tuple[str | int, ...], str] = {
    ("schedule", "rrule"): "rrule",
    ("schedule", "start"): "start",
    ("schedule", "time_zone"): "time_zone",
    ("schedule", "until"): "until",
    ("schedule", "count"): "count",
    ("schedule",): "rrule",
    ("task_template", "title"): "title",
    ("task_template", "description"): "description",
    ("task_template", "tags"): "tags",
    ("task_template", "reminders"): "reminders",
    ("task_template", "priority"): "priority",
    ("reminders",): "reminders",
    ("due_at",): "due",
}


class FormInvalid(Exception):
    """What is wrong, per form field ("" for the form as a whole)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Values:
    """A posted form: the first value of each name, and every value of the repeated ones."""

    pairs: Form
    _first: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.pairs:
            self._first.setdefault(name, value)

    def get(self, name: str, default: str = "") -> str:
        return self._first.get(name, default).strip()

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


def field_of(location: Sequence[str | int]) -> str:
    """The form field for an error at ``location`` in the body (or "" when none fits)."""
    path = tuple(part for part in location if part != "body")
    for length in range(len(path), 0, -1):
        found = _FIELD_OF.get(path[:length])
        if found:
            return found
    return str(path[-1]) if path and isinstance(path[-1], str) else ""


def _validated[M: BaseModel](model: type[M], body: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        errors: dict[str, str] = {}
        for problem in error.errors():
            errors.setdefault(field_of(problem["loc"]), problem["msg"].removeprefix("Value error, "))
        raise FormInvalid(errors) from None


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The browser's zone the page sent (UTC when it sent none or one this machine does not know)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _instant(text: str, *, in_zone: zoneinfo.ZoneInfo, name: str) -> datetime | None:
    """A ``datetime-local`` value (wall time in the browser's zone) as an instant."""
    if not text:
        return None
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise FormInvalid({name: "enter a date and time, such as 2026-12-24T18:00"}) from None
    return (wall if wall.tzinfo is not None else wall.replace(tzinfo=in_zone)).astimezone(UTC)


def _tags(text: str) -> list[str]:
    return [tag for tag in re.split(r"[,\s]+", text.lower()) if tag]


def reminders(values: Values) -> list[dict[str, str]]:
    """The chosen offsets, then the custom one (a duration such as 30m or 2d12h)."""
    chosen = [
        {"before": _CHOICE_DURATIONS[value]} for value in values.all("remind") if value in _CHOICE_DURATIONS
    ]
    custom = values.get("remind_custom")
    if custom:
        chosen.append({"before": custom})
    return chosen


def task_fields(values: Values) -> dict[str, Any]:
    in_zone = zone(values.get("tz"))
    due = _instant(values.get("due"), in_zone=in_zone, name="due")
    fields: dict[str, Any] = {
        "title": values.get("title"),
        "description": values.get("description"),
        "priority": values.get("priority", "medium"),
        "tags": _tags(values.get("tags")),
        "due_at": due,
        "reminders": reminders(values),
    }
    if fields["reminders"] and due is None:
        raise FormInvalid({"reminders": "reminders before the due time need a due time"})
    return fields


def task_create(values: Values) -> m.TaskCreate:
    return _validated(m.TaskCreate, task_fields(values))


def task_update(values: Values) -> m.TaskUpdate:
    return _validated(m.TaskUpdate, task_fields(values))


def simple_rule(values: Values) -> str:
    """The simple pattern as an RFC 5545 RRULE."""
    every = values.get("every", "weekly")
    if every not in _FREQUENCIES:
        raise FormInvalid({"every": "choose days, weeks, months or years"})
    interval = values.get("interval", "1") or "1"
    if not interval.isdigit() or not 1 <= int(interval) <= 1000:
        raise FormInvalid({"interval": "enter a whole number from 1 to 1000"})
    parts = [f"FREQ={_FREQUENCIES[every]}", f"INTERVAL={int(interval)}"]
    days = [day for day in values.all("weekday") if day in dict(WEEKDAYS)]
    if every == "weekly" and days:
        parts.append("BYDAY=" + ",".join(days))
    if every in ("monthly", "yearly"):
        parts.extend(_monthly_parts(values))
    return ";".join(parts)


def _monthly_parts(values: Values) -> list[str]:
    parts = []
    if values.get("on", "day") == "position":
        position, weekday = values.get("position", "-1"), values.get("position_weekday", "FR")
        if position not in dict(POSITIONS) or weekday not in dict(WEEKDAYS):
            raise FormInvalid({"position": "choose which weekday of the month"})
        parts.append(f"BYDAY={position}{weekday}")
    elif values.get("month_day"):
        day = values.get("month_day")
        if not re.fullmatch(r"-?\d{1,2}", day) or not 1 <= abs(int(day)) <= 31:
            raise FormInvalid({"month_day": "enter a day of the month from 1 to 31 (-1 for the last day)"})
        parts.append(f"BYMONTHDAY={int(day)}")
    if values.get("every") == "yearly":
        months = [month for month in values.all("month") if month.isdigit() and 1 <= int(month) <= 12]
        if months:
            parts.append("BYMONTH=" + ",".join(str(int(month)) for month in months))
    return parts


def schedule_fields(values: Values) -> dict[str, Any]:
    rule = values.get("rrule") if values.get("mode") == "advanced" else simple_rule(values)
    schedule: dict[str, Any] = {
        "rrule": rule,
        "start": values.get("start"),
        "time_zone": values.get("time_zone") or values.get("tz") or "UTC",
    }
    if values.get("ends") == "until" and values.get("until"):
        schedule["until"] = values.get("until")
    if values.get("ends") == "count" and values.get("count"):
        count = values.get("count")
        if not count.isdigit():
            raise FormInvalid({"count": "enter a whole number"})
        schedule["count"] = int(count)
    return schedule


def preview_request(values: Values, *, count: int) -> m.SchedulePreview:
    return _validated(m.SchedulePreview, {"schedule": schedule_fields(values), "count": count})


def recurring_fields(values: Values) -> dict[str, Any]:
    return {
        "schedule": schedule_fields(values),
        "anchor": values.get("anchor", "schedule"),
        "task_template": {
            "title": values.get("title"),
            "description": values.get("description"),
            "priority": values.get("priority", "medium"),
            "tags": _tags(values.get("tags")),
            "reminders": reminders(values),
        },
    }


def recurring_create(values: Values) -> m.RecurringTaskCreate:
    return _validated(m.RecurringTaskCreate, recurring_fields(values))


def recurring_update(values: Values) -> m.RecurringTaskUpdate:
    return _validated(m.RecurringTaskUpdate, recurring_fields(values))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def refusal_fields(fields: Sequence[tuple[str, str]]) -> dict[str, str]:
    """A refusal's fields (``schedule.rrule``, ``taskTemplate.title``) at the form's fields."""
    errors: dict[str, str] = {}
    for path, message in fields:
        location = tuple(_snake(part) for part in path.removeprefix("spec.").split(".") if not part.isdigit())
        errors.setdefault(field_of(location), message)
    return errors
