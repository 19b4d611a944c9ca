"""Request and response bodies, built from the domain's field types.

Request models reuse the annotated types of :mod:`todo_operator.domain.resources`
(``Title``, ``Tags``, ``Reminders``, ``Schedule`` ...) and every write is
validated once more as the full domain spec (``TaskSpec``,
``RecurringTaskSpec``, ``ReminderSpec``) before it is sent, so the REST API
refuses exactly what the CRD refuses, with the same words, before the API
server is asked. What the API adds: ``owner`` is never accepted (it is the
caller), names are the caller's short names (see :mod:`.names`), text
must not contain NUL characters, which PostgreSQL cannot store, and the
lists the CRD declares sets (tags, exdates, rdates) must not repeat a value, which
the domain model does not check and the API server refuses in its own terms.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from todo_operator.api import names
from todo_operator.domain import resources

PublicName = Annotated[
    str, Field(min_length=1, max_length=names.PUBLIC_NAME_MAX, pattern=names.PUBLIC_NAME_PATTERN)
]


def _distinct[Item: Hashable](values: list[Item]) -> list[Item]:
    """A list the CRD declares a set (``x-kubernetes-list-type: set``): refused here, naming the field,
    rather than by the API server, whose message names the object by its cluster name."""
    seen: set[Item] = set()
    repeated: list[Item] = []
    for value in values:
        if value in seen:
            repeated.append(value)
        seen.add(value)
    if repeated:
        shown = ", ".join(repr(value) for value in dict.fromkeys(repeated))
        raise ValueError(f"each value may appear once; {shown} appears more than once")
    return values


Tags = Annotated[resources.Tags, AfterValidator(_distinct)]
# Past this, the schedule engine cannot compute a next occurrence (datetime ends with the year 9999).
_LAST_PREVIEW_YEAR = 9998


def _computable(after: datetime) -> datetime:
    if after.year > _LAST_PREVIEW_YEAR:
        raise ValueError(f"must be before the year {_LAST_PREVIEW_YEAR + 1}")
    return after


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Every instant the API answers with has one form: RFC 3339 in UTC, with "Z" (docs/API.md).
# A Task's dueAt is kept as written in its spec; the API says it as the same instant in UTC.
Instant = Annotated[
    datetime,
    PlainSerializer(_utc, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "an instant, in UTC (RFC 3339, ending in Z)",
        },
        mode="serialization",
    ),
]


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python (as the resources)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, validate_by_name=True)


class Request(Wire):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul(self) -> Any:
        # After the fields' own checks, which name the field (a title refuses NUL among the control
        # characters): this catches what no field checks, as PostgreSQL text cannot hold NUL.
        if _has_nul(self.model_dump()):
            raise ValueError("text must not contain NUL characters")
        return self


# ---------------------------------------------------------------------- tasks


class TaskCreate(Request):
    name: PublicName | None = Field(default=None, description="your name for it; generated when left out")
    title: resources.Title
    description: resources.Description = ""
    priority: resources.Priority = "medium"
    tags: Tags = []
    due_at: AwareDatetime | None = None
    reminders: resources.Reminders = []


class TaskUpdate(Request):
    """A JSON merge patch of the task: fields left out stay; ``dueAt: null`` removes the due time."""

    title: resources.Title | None = None
    description: resources.Description | None = None
    priority: resources.Priority | None = None
    tags: Tags | None = None
    due_at: AwareDatetime | None = None
    reminders: resources.Reminders | None = None
    completed: bool | None = None


class TaskPublic(Wire):
    name: str
    title: str
    description: str
    owner: str
    priority: resources.Priority
    tags: list[str]
    due_at: Instant | None
    reminders: list[dict[str, Any]]
    completed: bool
    completed_at: Instant | None
    phase: str = Field(description="Open, Overdue or Completed; Skipped: an occurrence skipped (history)")
    recurring_task: str | None = None
    occurrence: int | None = None
    next_occurrence: Instant | None = None
    created_at: Instant | None = None
    live: bool = Field(
        description="false: history (completed or skipped), kept after its object left the cluster"
    )
    resource_version: str | None = None


class TaskPage(Wire):
    items: list[TaskPublic]
    next_cursor: str | None = None


# ---------------------------------------------------------------------- recurring tasks


class ScheduleIn(resources.Schedule):
    """The resource's schedule; the CRD lists time zones as an enum, here the validator alone checks them.

    (The CRD generator fills a placeholder enum that is not valid OpenAPI on its own.)
    """

    time_zone: resources.TimeZoneName = Field(default="UTC", description="an IANA time zone name")

    @field_validator("exdates", "rdates")
    @classmethod
    def _distinct_dates(cls, dates: list[str]) -> list[str]:
        return _distinct(dates)


class TemplateIn(Request):
    title: resources.Title
    description: resources.Description = ""
    priority: resources.Priority = "medium"
    tags: Tags = []
    reminders: resources.Reminders = []


class RecurringTaskCreate(Request):
    name: PublicName | None = None
    schedule: ScheduleIn
    anchor: resources.Anchor = "schedule"
    suspend: bool = False
    history_limit: Annotated[int, Field(ge=0, le=100)] = 5
    task_template: TemplateIn


class RecurringTaskUpdate(Request):
    schedule: ScheduleIn | None = None
    anchor: resources.Anchor | None = None
    suspend: bool | None = None
    history_limit: Annotated[int, Field(ge=0, le=100)] | None = None
    task_template: TemplateIn | None = None


class RecurringTaskPublic(Wire):
    name: str
    title: str
    schedule: dict[str, Any]
    anchor: str
    suspend: bool
    history_limit: int
    task_template: dict[str, Any]
    phase: str | None = None
    rule: str | None = None
    current_task: str | None = None
    next_due_at: Instant | None = None
    occurrences: int = 0
    last_completed_at: Instant | None = None
    created_at: Instant | None = None
    resource_version: str | None = None


class RecurringTaskPage(Wire):
    items: list[RecurringTaskPublic]
    next_cursor: str | None = None


class Occurrence(Wire):
    name: str
    occurrence: int | None
    due_at: Instant | None
    completed: bool
    completed_at: Instant | None
    phase: str = Field(description="Open, Overdue, Completed, or Skipped (the series moved past it)")
    live: bool


class Occurrences(Wire):
    past: list[Occurrence] = Field(
        description="completed and skipped occurrences, oldest first (history included)"
    )
    current: list[Occurrence] = Field(
        description="occurrences made and not completed yet (open or overdue; one, unless the series"
        " was edited while one was open)"
    )
    upcoming: list[Instant] = Field(description="what the schedule gives after the current one")


class SchedulePreview(Request):
    schedule: ScheduleIn
    count: Annotated[int, Field(ge=1, le=1000)] = 10
    after: Annotated[AwareDatetime, AfterValidator(_computable)] | None = Field(
        default=None, description="default: now"
    )


class SchedulePreviewResult(Wire):
    rule: str
    time_zone: str
    occurrences: list[Instant]


# ---------------------------------------------------------------------- reminders


class ReminderCreate(Request):
    """A reminder e-mailed to you (the recipient is always the caller)."""

    name: PublicName | None = None
    task: PublicName
    before: resources.Duration | None = None
    at: AwareDatetime | None = None
    message: resources.Message = ""


class ReminderPublic(Wire):
    name: str
    task: str
    before: str | None = None
    at: Instant | None = None
    message: str = ""
    phase: str | None = None
    fire_at: Instant | None = None
    sent_at: Instant | None = None
    attempts: int = 0
    last_error: str | None = None


class ReminderPage(Wire):
    items: list[ReminderPublic]
    next_cursor: str | None = None


# ---------------------------------------------------------------------- activity, admin


class ActivityItem(Wire):
    id: int
    type: str
    subject: str
    summary: str
    occurred_at: Instant


class ActivityPage(Wire):
    items: list[ActivityItem]
    next_cursor: str | None = None


class DeadLetterPublic(Wire):
    id: int
    reminder_uid: str | None = None  # set for a reminder that could not be sent: retry sends it again
    event_id: str
    topic: str
    event_type: str | None
    subject: str | None
    partition_key: str | None
    attempts: int
    last_error: str | None
    failed_at: Instant
    retried_at: Instant | None
    payload: dict[str, Any]


class RetryResultPublic(Wire):
    dead_letter_id: int
    requeued: bool
    outbox_id: int | None


class Health(Wire):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


class DaprAnswer(BaseModel):
    status: Literal["SUCCESS", "RETRY", "DROP"]
