"""The three custom resources — Task, RecurringTask, Reminder — as pydantic models.

These models are the contract users write in YAML. They serve twice: the
operator parses every object it receives through them, and
:mod:`todo_operator.domain.crds` turns their JSON schema into the CRDs'
``openAPIV3Schema``, so the API server rejects a bad spec before the operator
ever sees it. Field names are camelCase on the wire (``dueAt``) and snake_case
in Python (``due_at``).

Rules that tie one field to another are written twice on purpose: as CEL in
``x-kubernetes-validations`` (the API server enforces it and names the field)
and as a pydantic validator (the REST API and the operator enforce it even
where the CRD was not installed from this version). Where a rule cannot be
expressed in the schema (an RRULE that never matches), the operator rejects
it and reports ``Ready=False``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from todo_operator.domain import text
from todo_operator.domain.zones import known_time_zones, unknown_time_zone

GROUP = "todo.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Priority = Literal["low", "medium", "high", "urgent"]
TaskPhase = Literal["Open", "Overdue", "Completed"]
RecurringTaskPhase = Literal["Active", "Suspended", "Ended"]
ReminderPhase = Literal["Pending", "Scheduled", "Sent", "Failed", "Cancelled"]
Frequency = Literal["daily", "weekly", "monthly", "yearly"]
Anchor = Literal["schedule", "completion"]

# A pragmatic e-mail shape (RFC 5321 lengths): good enough to catch typos at the
# API server; delivery problems are reported by the mail server later.
_EMAIL_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_DOMAIN_PATTERN = rf"{_EMAIL_LABEL}(?:\.{_EMAIL_LABEL})*"
EMAIL_PATTERN = rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{EMAIL_DOMAIN_PATTERN}$"
DURATION_PATTERN = r"^(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?$"
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
# A local or offset date-time as users write it in a schedule: 2026-12-04T16:00:00[+01:00|Z].
LOCAL_DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
)
RRULE_PATTERN = r"^(?:RRULE:)?[A-Za-z0-9=;,+-]+$"
MAX_RULE_LENGTH = 512


def parse_duration(text: str) -> timedelta:
    """``1h30m`` → 90 minutes. Units d, h, m, in that order; at least one."""
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h, 1h30m or 2d")
    days, hours, minutes = (int(group) if group else 0 for group in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def _check_instant(value: datetime) -> datetime:
    # 0001-01-01T00:00+01:00 parses, but is in the year 0 in UTC: nothing downstream can compute with it.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is outside the years 1 to 9999 in UTC") from None
    return value


def _check_time_zone(name: str) -> str:
    if name not in known_time_zones():
        raise ValueError(unknown_time_zone(name))
    return name


Duration = Annotated[
    str, Field(pattern=DURATION_PATTERN, min_length=2, max_length=16), AfterValidator(_check_duration)
]
Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]
Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=TAG_PATTERN)]


def _check_local_datetime(text: str) -> str:
    try:
        parse_local_datetime(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date and time") from None
    return text


def _cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> JsonDict:
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        validation["fieldPath"] = field_path
    if reason is not None:
        validation["reason"] = reason
    return validation


# Control characters (NUL, which PostgreSQL text cannot hold, among them) are refused where they
# have no meaning; the CEL rule makes the API server say the same as the models (domain/text.py).
_SINGLE_LINE = Field(
    json_schema_extra={"x-kubernetes-validations": [_cel(text.SINGLE_LINE_RULE, text.SINGLE_LINE_MESSAGE)]}
)
_MULTI_LINE = Field(
    json_schema_extra={"x-kubernetes-validations": [_cel(text.MULTI_LINE_RULE, text.MULTI_LINE_MESSAGE)]}
)
Title = Annotated[
    str, Field(min_length=1, max_length=200), _SINGLE_LINE, AfterValidator(text.check_single_line)
]
Description = Annotated[str, Field(max_length=4000), _MULTI_LINE, AfterValidator(text.check_multi_line)]
Message = Annotated[str, Field(max_length=1000), _MULTI_LINE, AfterValidator(text.check_multi_line)]
LocalDateTime = Annotated[
    str, Field(pattern=LOCAL_DATETIME_PATTERN, max_length=40), AfterValidator(_check_local_datetime)
]
TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]
# An instant users write (dueAt, at): RFC 3339 with an offset, and representable in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_check_instant)]
ResourceName = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]


class Model(BaseModel):
    """Base: camelCase on the wire, unknown fields refused, values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_by_name=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as the API server stores it (aliases, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------------- shared


class Condition(Model):
    """A Kubernetes condition (the shape of metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: AwareDatetime
    observed_generation: int | None = Field(default=None, ge=0)


Conditions = Annotated[
    list[Condition],
    Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]


class ReminderOffset(Model):
    """One entry of ``reminders``: ``before`` the task's due time, or ``at`` an instant."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.before) != has(self.at)", "set exactly one of 'before' or 'at'")
            ]
        }
    )

    before: Duration | None = None
    at: Instant | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReminderOffset:
        if (self.before is None) == (self.at is None):
            raise ValueError("set exactly one of 'before' or 'at'")
        return self


Reminders = Annotated[
    list[ReminderOffset], Field(max_length=10, json_schema_extra={"x-kubernetes-list-type": "atomic"})
]
Tags = Annotated[list[Tag], Field(max_length=20, json_schema_extra={"x-kubernetes-list-type": "set"})]

# A 'before' reminder needs a due time to count back from.
_BEFORE_NEEDS_DUE = _cel(
    "!has(self.reminders) || self.reminders.all(r, !has(r.before)) || has(self.dueAt)",
    "reminders with 'before' need spec.dueAt",
    field_path=".reminders",
)


# ---------------------------------------------------------------------- Task


class TaskSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_BEFORE_NEEDS_DUE]})

    title: Title
    description: Description = ""
    owner: Email
    priority: Priority = "medium"
    tags: Tags = []
    due_at: Instant | None = None
    reminders: Reminders = []
    completed: bool = False

    @model_validator(mode="after")
    def _before_needs_due(self) -> TaskSpec:
        if self.due_at is None and any(reminder.before for reminder in self.reminders):
            raise ValueError("reminders with 'before' need spec.dueAt")
        return self


class TaskStatus(Model):
    phase: TaskPhase | None = None
    completed_at: AwareDatetime | None = None
    recurring_task: ResourceName | None = None
    occurrence: int | None = Field(default=None, ge=1)
    reminders: Annotated[list[ResourceName], Field(json_schema_extra={"x-kubernetes-list-type": "set"})] = []
    conditions: Conditions = []
    observed_generation: int | None = Field(default=None, ge=0)


# ---------------------------------------------------------------------- RecurringTask


class Schedule(Model):
    """When occurrences fall due: an RFC 5545 RRULE, or the simple ``every`` form."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.rrule) != has(self.every)", "set exactly one of 'rrule' or 'every'"),
                _cel(
                    "!has(self.interval) || has(self.every)",
                    "'interval' goes with 'every'; write INTERVAL= inside the rrule",
                    field_path=".interval",
                ),
                _cel("!(has(self.until) && has(self.count))", "set at most one of 'until' or 'count'"),
            ]
        }
    )

    rrule: Annotated[str, Field(min_length=1, max_length=MAX_RULE_LENGTH, pattern=RRULE_PATTERN)] | None = (
        None
    )
    every: Frequency | None = None
    interval: Annotated[int, Field(ge=1, le=1000)] | None = None
    start: LocalDateTime
    # The CRD checks the name with a CEL rule (see crds.py); the marker says where.
    time_zone: Annotated[TimeZoneName, Field(max_length=64, json_schema_extra={"x-todo-time-zone": True})] = (
        "UTC"
    )
    until: LocalDateTime | None = None
    count: Annotated[int, Field(ge=1, le=10_000)] | None = None
    exdates: Annotated[
        list[LocalDateTime], Field(max_length=366, json_schema_extra={"x-kubernetes-list-type": "set"})
    ] = []

    @model_validator(mode="after")
    def _one_form(self) -> Schedule:
        if (self.rrule is None) == (self.every is None):
            raise ValueError("set exactly one of 'rrule' or 'every'")
        if self.interval is not None and self.every is None:
            raise ValueError("'interval' goes with 'every'; write INTERVAL= inside the rrule")
        if self.until is not None and self.count is not None:
            raise ValueError("set at most one of 'until' or 'count'")
        return self


class TaskTemplate(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # Occurrences get their dueAt from the schedule, so 'before' is always fine here.
                _cel("!has(self.reminders) || self.reminders.size() <= 10", "at most 10 reminders")
            ]
        }
    )

    title: Title
    description: Description = ""
    owner: Email
    priority: Priority = "medium"
    tags: Tags = []
    reminders: Reminders = []


class RecurringTaskSpec(Model):
    schedule: Schedule
    anchor: Anchor = "schedule"
    suspend: bool = False
    history_limit: Annotated[int, Field(ge=0, le=100)] = 5
    task_template: TaskTemplate


class PendingOccurrence(Model):
    """The next occurrence, decided and committed, while its Task is being created."""

    task: ResourceName
    index: int = Field(ge=1)
    due_at: AwareDatetime


class RecurringTaskStatus(Model):
    phase: RecurringTaskPhase | None = None
    rule: str | None = Field(default=None, max_length=MAX_RULE_LENGTH + 64)
    current_task: ResourceName | None = None
    next_due_at: AwareDatetime | None = None
    occurrences: int = Field(default=0, ge=0)
    last_completed_at: AwareDatetime | None = None
    pending: PendingOccurrence | None = None
    conditions: Conditions = []
    observed_generation: int | None = Field(default=None, ge=0)


# ---------------------------------------------------------------------- Reminder


class TaskRef(Model):
    name: ResourceName


class ReminderSpec(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.before) != has(self.at)", "set exactly one of 'before' or 'at'")
            ]
        }
    )

    task_ref: TaskRef
    before: Duration | None = None
    at: Instant | None = None
    channel: Literal["email"] = "email"
    to: Email | None = None
    message: Message = ""

    @model_validator(mode="after")
    def _exactly_one(self) -> ReminderSpec:
        if (self.before is None) == (self.at is None):
            raise ValueError("set exactly one of 'before' or 'at'")
        return self


class ReminderStatus(Model):
    phase: ReminderPhase | None = None
    fire_at: AwareDatetime | None = None
    cron_job: ResourceName | None = None
    attempts: int = Field(default=0, ge=0)
    sent_at: AwareDatetime | None = None
    last_error: Annotated[str, Field(max_length=4096)] | None = None
    conditions: Conditions = []
    observed_generation: int | None = Field(default=None, ge=0)


def parse_local_datetime(text: str) -> datetime:
    """A schedule's date-time: naive (wall clock in the schedule's zone) or aware."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def describe_validation_error(error: ValidationError, *, prefix: str = "spec") -> str:
    """Problems joined on one line, each ``spec.schedule.interval: Input should be greater than ...``."""
    lines = []
    for problem in error.errors(include_url=False):
        path = ".".join([prefix, *(str(part) for part in problem["loc"])]) if problem["loc"] else prefix
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return "; ".join(lines)
