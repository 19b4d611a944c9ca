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
    """Base: camelCase on the wire, unknown fields refused, values immutable.

    Docstrings are descriptions: a field's (the string under it) and a model's own become the
    JSON schema's, and so the CRD's, which ``kubectl explain`` shows (and the REST API's OpenAPI
    document, where it reuses these types). Write them as plain text for users, no markup.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as the API server stores it (aliases, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------------- shared


class Condition(Model):
    """A Kubernetes condition (the shape of metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316)
    """The aspect this condition reports on; the operator sets Ready."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds: True, False or Unknown."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """One CamelCase word saying why the condition has this status, such as InvalidSpec."""
    message: str = Field(default="", max_length=32768)
    """A human-readable explanation of the reason."""
    last_transition_time: AwareDatetime
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation of the object the condition was set for."""


Conditions = Annotated[
    list[Condition],
    Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]


class ReminderOffset(Model):
    """One reminder: a time before the task's due time, or a fixed instant."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.before) != has(self.at)", "set exactly one of 'before' or 'at'")
            ]
        }
    )

    before: Duration | None = None
    """How long before the task's dueAt the e-mail goes out: a duration such as 30m, 1h, 1h30m or 2d
    (units d, h and m, in that order). Needs dueAt; set either before or at."""
    at: Instant | None = None
    """The instant the e-mail goes out: an RFC 3339 date-time with an offset, such as
    2026-12-09T18:00:00+01:00. Set either before or at."""

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
    """The task as its owner describes it: what, who, how important, when due, when to remind."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_BEFORE_NEEDS_DUE]})

    title: Title
    """What is to be done, on one line of 1 to 200 characters; reminder e-mails name it in their subject."""
    description: Description = ""
    """More about the task, up to 4000 characters; line breaks and tabs are allowed. Empty by default."""
    owner: Email
    """The e-mail address of the person the task belongs to. Its reminders go to this address, and
    the REST API lists the task for this user."""
    priority: Priority = "medium"
    """How important the task is: low, medium (the default), high or urgent."""
    tags: Tags = []
    """Labels to group and find tasks by, such as home or work: at most 20, each 1 to 50 letters,
    digits and the characters _ . : / - (starting with a letter or digit)."""
    due_at: Instant | None = None
    """When the task is due: an RFC 3339 date-time with an offset, such as 2026-12-04T16:00:00+01:00.
    Once it has passed and the task is not completed, the operator marks the task Overdue; reminders
    with before count back from it. Optional."""
    reminders: Reminders = []
    """E-mail reminders, at most 10. The operator makes one Reminder object per entry, named after
    the task and the entry, and deletes it when the entry is removed."""
    completed: bool = False
    """Set to true when the task is done (false by default). The operator records when, cancels the
    reminders that have not been sent and, for an occurrence of a RecurringTask, opens the next one."""

    @model_validator(mode="after")
    def _before_needs_due(self) -> TaskSpec:
        if self.due_at is None and any(reminder.before for reminder in self.reminders):
            raise ValueError("reminders with 'before' need spec.dueAt")
        return self


class TaskStatus(Model):
    """What the operator observed and did; written by the operator only."""

    phase: TaskPhase | None = None
    """Open, Overdue (dueAt has passed) or Completed. Empty until the operator first accepts the spec
    (see the Ready condition)."""
    completed_at: AwareDatetime | None = None
    """When the operator first saw the task completed, as PostgreSQL recorded it."""
    recurring_task: ResourceName | None = None
    """The name of the RecurringTask this task is an occurrence of; empty for a one-off task."""
    occurrence: int | None = Field(default=None, ge=1)
    """This occurrence's number in its RecurringTask's series, counting from 1."""
    reminders: Annotated[list[ResourceName], Field(json_schema_extra={"x-kubernetes-list-type": "set"})] = []
    """Reserved for the names of the task's Reminder objects; this version of the operator leaves it
    empty (the Reminders made from spec.reminders carry the label todo.dev/task-uid)."""
    conditions: Conditions = []
    """Ready is True once the operator has accepted the spec (reason Open, Overdue or Completed), and
    False with reason InvalidSpec when it refused it (the message names the field)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation of the spec the operator last processed."""


# ---------------------------------------------------------------------- RecurringTask


class Schedule(Model):
    """When occurrences fall due: an RFC 5545 RRULE, or the simple every form."""

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
    """An RFC 5545 recurrence rule, with or without the RRULE: prefix, such as FREQ=WEEKLY;BYDAY=MO,TH.
    FREQ may be MINUTELY to YEARLY, and occurrences must be at least 5 minutes apart. Set either
    rrule or every."""
    every: Frequency | None = None
    """The simple form instead of an rrule: daily, weekly, monthly or yearly, from start. Set either
    rrule or every."""
    interval: Annotated[int, Field(ge=1, le=1000)] | None = None
    """With every: repeat every this many days, weeks, months or years (1 to 1000, 1 by default). In
    an rrule, write INTERVAL= instead."""
    start: LocalDateTime
    """The first possible due time and the anchor of the rule, such as 2026-12-03T08:00:00. Without
    an offset it is wall-clock time in timeZone; with one (Z, +01:00) it is that instant."""
    # The CRD checks the name with a CEL rule (see crds.py); the marker says where.
    time_zone: Annotated[TimeZoneName, Field(max_length=64, json_schema_extra={"x-todo-time-zone": True})] = (
        "UTC"
    )
    """The IANA time zone the schedule runs in, such as Europe/Berlin; UTC by default. Occurrences
    keep their wall-clock time across daylight saving time changes."""
    until: LocalDateTime | None = None
    """The last possible occurrence, inclusive: a date-time written like start (wall-clock time in
    timeZone unless it has an offset). Not together with count."""
    count: Annotated[int, Field(ge=1, le=10_000)] | None = None
    """How many occurrences the schedule has in all, 1 to 10000. Not together with until."""
    exdates: Annotated[
        list[LocalDateTime], Field(max_length=366, json_schema_extra={"x-kubernetes-list-type": "set"})
    ] = []
    """Occurrences to skip, at most 366: each must name an occurrence's time exactly, to the second,
    as wall-clock time in timeZone or as an instant with an offset."""
    rdates: Annotated[
        list[LocalDateTime], Field(max_length=366, json_schema_extra={"x-kubernetes-list-type": "set"})
    ] = []
    """Extra occurrences beside the rule's (RFC 5545 RDATE), at most 366, none before start: written
    like start. count and until bound the rule only; an exdate removes an rdate too."""

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
    """The fields every occurrence (a Task) is made with; its dueAt comes from the schedule."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # Occurrences get their dueAt from the schedule, so 'before' is always fine here.
                _cel("!has(self.reminders) || self.reminders.size() <= 10", "at most 10 reminders")
            ]
        }
    )

    title: Title
    """Each occurrence's title: one line of 1 to 200 characters."""
    description: Description = ""
    """Each occurrence's description, up to 4000 characters; line breaks and tabs are allowed. Empty
    by default."""
    owner: Email
    """The e-mail address of the person the occurrences belong to; their reminders go to it."""
    priority: Priority = "medium"
    """Each occurrence's priority: low, medium (the default), high or urgent."""
    tags: Tags = []
    """Each occurrence's tags: at most 20, each 1 to 50 letters, digits and the characters _ . : / -
    (starting with a letter or digit)."""
    reminders: Reminders = []
    """Each occurrence's e-mail reminders, at most 10; before counts back from the occurrence's due
    time."""


class RecurringTaskSpec(Model):
    """A schedule, and the template of the Tasks the operator opens on it, one at a time."""

    schedule: Schedule
    """When occurrences fall due: an RFC 5545 rrule or the simple every form, from start, in
    timeZone."""
    anchor: Anchor = "schedule"
    """How the next due time follows a completion. schedule (the default): the next slot of the
    schedule after both the previous due time and the completion, so late completions skip missed
    slots. completion: measured from the moment of completion."""
    suspend: bool = False
    """Set to true to stop opening new occurrences: the open one stays, and the next one comes once
    suspend is false again. False by default."""
    history_limit: Annotated[int, Field(ge=0, le=100)] = 5
    """How many completed occurrences to keep as Task objects, 0 to 100 (5 by default); older ones
    are deleted from the cluster, and PostgreSQL keeps their history."""
    task_template: TaskTemplate
    """The Task each occurrence is made from; its dueAt comes from the schedule."""


class PendingOccurrence(Model):
    """The next occurrence, decided and committed, while its Task is being created."""

    task: ResourceName
    """The name the occurrence's Task gets (the series' name and its due time in UTC)."""
    index: int = Field(ge=1)
    """The occurrence's number in the series, counting from 1."""
    due_at: AwareDatetime
    """When the occurrence is due (RFC 3339)."""


class RecurringTaskStatus(Model):
    """What the operator observed and did; written by the operator only."""

    phase: RecurringTaskPhase | None = None
    """Active (occurrences are being opened), Suspended (spec.suspend is true) or Ended (the
    schedule has no further occurrence). Empty until the operator first accepts the schedule."""
    rule: str | None = Field(default=None, max_length=MAX_RULE_LENGTH + 64)
    """The schedule as the operator understood it, as one RRULE in canonical spelling (the every
    form is shown as its rule)."""
    current_task: ResourceName | None = None
    """The name of the open occurrence, the Task to complete next."""
    next_due_at: AwareDatetime | None = None
    """When the open occurrence is due (RFC 3339); empty once the schedule has ended."""
    occurrences: int = Field(default=0, ge=0)
    """How many occurrences have been opened so far, skipped (deleted) ones included."""
    last_completed_at: AwareDatetime | None = None
    """When an occurrence was last completed (RFC 3339); skipping one does not change it."""
    pending: PendingOccurrence | None = None
    """The next occurrence while its Task is being created: recorded first, so that it is made
    exactly once even across a crash."""
    conditions: Conditions = []
    """Ready is True while the schedule is valid (reason Scheduled, Suspended or Ended), and False
    with reason InvalidSchedule when the operator refused the spec (the message says why)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation of the spec the operator last processed."""


# ---------------------------------------------------------------------- Reminder


class TaskRef(Model):
    """A Task in the same namespace."""

    name: ResourceName
    """The name of the Task."""


class ReminderSpec(Model):
    """Which Task to remind of, when, and to whom."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.before) != has(self.at)", "set exactly one of 'before' or 'at'")
            ]
        }
    )

    task_ref: TaskRef
    """The Task this reminder is about, in the same namespace."""
    before: Duration | None = None
    """How long before the Task's dueAt the e-mail goes out: a duration such as 30m, 1h, 1h30m or
    2d. The reminder moves when dueAt changes. Set either before or at."""
    at: Instant | None = None
    """The instant the e-mail goes out: an RFC 3339 date-time with an offset, such as
    2026-12-09T18:00:00+01:00. Set either before or at."""
    channel: Literal["email"] = "email"
    """How the reminder is delivered; email, the default, is the only channel."""
    to: Email | None = None
    """Who gets the e-mail; the Task's owner by default. Any other address must be in a domain the
    operator allows (TODO_REMINDER_RECIPIENT_DOMAINS), or the reminder fails with
    RecipientNotAllowed."""
    message: Message = ""
    """Text added to the e-mail, up to 1000 characters; line breaks and tabs are allowed."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ReminderSpec:
        if (self.before is None) == (self.at is None):
            raise ValueError("set exactly one of 'before' or 'at'")
        return self


class ReminderStatus(Model):
    """What the operator observed and did; written by the operator only."""

    phase: ReminderPhase | None = None
    """Scheduled (a CronJob or a Dapr job will send it), Pending (the operator will send it
    itself), Sent, Failed (see the Ready condition's reason and lastError) or Cancelled (its Task
    was completed or deleted first)."""
    fire_at: AwareDatetime | None = None
    """When the e-mail is to go out (RFC 3339), worked out from at, or from before and the Task's
    dueAt."""
    cron_job: ResourceName | None = None
    """The name of the CronJob that will send it, with CronJob delivery; removed once it is sent or
    cancelled."""
    dapr_job: ResourceName | None = None
    """The name of the Dapr job that will trigger it, with dapr-jobs delivery
    (reminder-<uid>-g<generation>); removed once it is sent or cancelled."""
    attempts: int = Field(default=0, ge=0)
    """How many times sending was tried."""
    sent_at: AwareDatetime | None = None
    """When the mail server accepted the e-mail (RFC 3339)."""
    last_error: Annotated[str, Field(max_length=4096)] | None = None
    """Why the last attempt failed, or why the reminder was not sent."""
    conditions: Conditions = []
    """Ready is True while the reminder is scheduled or pending, once it is sent (reason Sent or
    SentLate) and when it is cancelled. It is False while the reminder waits for its Task to be fixed
    (InvalidTask), and when it failed (InvalidSpec, TaskNotFound, NoDueTime, Missed, DeliveryFailed or
    RecipientNotAllowed)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation of the spec the operator last processed."""


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
