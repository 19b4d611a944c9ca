"""What must become of one hostile manifest: refused naming the field, or handled by the operator.

Plain functions, so that the property tests and their negative controls
(a deliberately loosened schema, a broken validator) run the very same
checks. The API server's side is the emulator's admission module called
in-process; the operator's side is its real reconcilers over the fakes of
:mod:`tests.fakes`, without Kopf.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from kube_emulator import errors, validation
from kube_emulator import resources as api_resources
from tests.fakes import SCHEMAS, FakeClaims, FakeKube, FakeRecords, RecordingEvents
from todo_operator.clock import ManualClock
from todo_operator.domain import crds, resources, timing
from todo_operator.operator import reconciling
from todo_operator.operator import reminders as reminder_objects
from todo_operator.schedule_engine import ScheduleEngine

Body = dict[str, Any]
Outcome = Literal["refused", "reconciled", "invalid-spec"]
Admit = Callable[..., validation.Outcome]

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NAMESPACE = "hostile"
RESOURCE_TYPES = {
    kind.kind: api_resources.from_crd(crds.custom_resource_definition(kind))[0] for kind in crds.KINDS
}
_RESOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

# Where the CRD schema accepts what the pydantic model refuses. Each is reported by the operator as
# InvalidSpec (the tests check that); anything else the model refuses must be refused by the CRD.
# (pattern of the path's end, pattern of the message, why the schema cannot or does not say it)
KNOWN_SCHEMA_GAPS: tuple[tuple[str, str, str], ...] = (
    (
        r"(dueAt|at)",
        r"^Input should be a valid datetime|is outside the years 1 to 9999 in UTC",
        "format: date-time checks the shape (the emulator a regex, kube-apiserver strfmt), not the "
        "calendar (30 February), and not that the instant exists in UTC (0001-01-01T00:00+01:00)",
    ),
    (
        r"before",
        r"is too long a duration",
        "a duration overflowing Python's timedelta: the pattern allows 16 digits",
    ),
    (
        r"schedule\.(start|until|exdates\.\d+|rdates\.\d+)",
        r"is not a valid date and time",
        "LocalDateTime: the pattern checks the shape, not the calendar (2026-04-31T09:00, 25:00)",
    ),
    (
        r".*",
        r"^String should match pattern",
        "the emulator matches patterns with Python's re, where $ also matches before a final newline "
        "(kube-apiserver uses Go's RE2, where it does not): 'alice@example.com\\n' passes the emulator",
    ),
)


@dataclasses.dataclass(frozen=True)
class Verdict:
    kind: str
    outcome: Outcome
    detail: str = ""


def admit(
    manifest: Body, *, schemas: Mapping[str, Any] = SCHEMAS, admit: Admit = validation.admit
) -> tuple[Body, list[errors.Cause]]:
    """The manifest as the API server would store it (defaulted, pruned), and its validation errors."""
    admitted = copy.deepcopy(manifest)
    outcome = admit(admitted, schemas[manifest["kind"]], old=None)
    return admitted, outcome.causes


def path_tokens(path: str) -> list[str | int]:
    """``spec.reminders[2].at`` → ``["spec", "reminders", 2, "at"]``."""
    tokens: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        tokens.append(int(index) if index else name)
    return tokens


def field_exists(obj: Any, path: str, *, parent_only: bool = False) -> bool:
    tokens = path_tokens(path)
    if not tokens:
        return False
    if parent_only:
        tokens = tokens[:-1]
    node = obj
    for token in tokens:
        if (isinstance(token, int) and isinstance(node, list) and token < len(node)) or (
            isinstance(token, str) and isinstance(node, dict) and token in node
        ):
            node = node[token]
        else:
            return False
    return not parent_only or isinstance(node, dict)


def check_refusal(manifest: Body, admitted: Body, causes: list[errors.Cause]) -> None:
    """Every cause names a field of the manifest (its parent, for a missing one), and the message says it."""
    for cause in causes:
        assert cause.field, f"a refusal that names no field: {cause}"
        missing = cause.reason == "FieldValueRequired"
        assert field_exists(admitted, cause.field, parent_only=missing), (
            f"{cause.field!r} is not a field of the manifest: {cause}"
        )
    message = errors.invalid(RESOURCE_TYPES[manifest["kind"]], "hostile", causes).message
    for cause in causes:
        assert cause.field in message, f"the 422 message does not name {cause.field}: {message[:500]}"


def check_schema_gap(error: ValidationError) -> None:
    """The model refused a spec the schema accepted: only for the documented reasons."""
    for problem in error.errors(include_url=False):
        path = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        known = any(
            re.search(rf"(?:^|\.)(?:{path_pattern})$", path) and re.search(message_pattern, message)
            for path_pattern, message_pattern, _ in KNOWN_SCHEMA_GAPS
        )
        assert known, (
            f"the CRD schema accepts spec.{path}={problem.get('input')!r} but the model refuses it "
            f"({message}): say it in the CRD, or document the gap in KNOWN_SCHEMA_GAPS"
        )


def _body(
    admitted: Body, *, name: str = "hostile", uid: str = "00000000-0000-4000-8000-00000000beef"
) -> Body:
    body = copy.deepcopy(admitted)
    body["metadata"] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": uid,
        "generation": 1,
        "creationTimestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return body


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def _check_rejected_status(
    kube: FakeKube, records: FakeRecords, events: RecordingEvents, *, reason: str, message: str
) -> None:
    assert not records.saved, f"an invalid spec was recorded in PostgreSQL: {records.saved}"
    assert not kube.created, "an invalid spec created objects"
    ready = _ready(kube.statuses[-1][2])
    assert (ready.get("status"), ready.get("reason"), ready.get("message")) == ("False", reason, message)
    assert message.startswith("spec"), f"the message does not name the field: {message}"
    assert events.posted == [("Warning", reason, message)]


_ENGINE = ScheduleEngine()  # one for all the cases, as the operator has one


def _reconcilers(
    kube: FakeKube, records: FakeRecords, events: RecordingEvents
) -> tuple[reconciling.TaskReconciler, reconciling.RecurringTaskReconciler]:
    """The operator's two reconcilers as ``main.py`` builds them, over the fakes."""
    clock = ManualClock(NOW)
    recurring = reconciling.RecurringTaskReconciler(
        kube=kube, records=records, claims=FakeClaims(), clock=clock, cluster_events=events, engine=_ENGINE
    )
    tasks = reconciling.TaskReconciler(
        kube=kube,
        records=records,
        claims=FakeClaims(),
        clock=clock,
        cluster_events=events,
        recurring=recurring,
    )
    return tasks, recurring


def _check_task_reminders(spec: resources.TaskSpec) -> None:
    for entry in spec.reminders:
        name = timing.reminder_name("hostile", entry)
        assert len(name) <= timing.MAX_NAME_LENGTH, name
        assert _RESOURCE_NAME.match(name), name
        try:
            fire = timing.fire_at(entry, due_at=spec.due_at)
        except timing.ReminderError:
            continue  # reported by the Reminder's own status
        assert fire.tzinfo is not None
        timing.cron_schedule(fire)


async def _reconcile_task(admitted: Body) -> Verdict:
    kube, records, events = FakeKube(), FakeRecords(), RecordingEvents()
    tasks, _ = _reconcilers(kube, records, events)
    body = _body(admitted)
    kube.put(crds.TASK, body)
    try:
        await tasks.reconcile(body)
    except reconciling.InvalidSpec as error:
        try:
            resources.TaskSpec.model_validate(admitted.get("spec") or {})
        except ValidationError as refused:
            check_schema_gap(refused)
        else:
            raise AssertionError(f"InvalidSpec for a spec the model accepts: {error}") from None
        _check_rejected_status(kube, records, events, reason="InvalidSpec", message=str(error))
        return Verdict("Task", "invalid-spec", str(error))
    spec = resources.TaskSpec.model_validate(admitted["spec"])
    ((_, recorded),) = records.saved
    assert "task.created" in {event.type for event in recorded}
    ready = _ready(kube.statuses[-1][2])
    assert ready["status"] == "True", ready
    assert ready["reason"] in ("Open", "Overdue", "Completed"), ready
    _check_task_reminders(spec)
    return Verdict("Task", "reconciled")


async def _reconcile_recurring_task(admitted: Body) -> Verdict:
    kube, records, events = FakeKube(), FakeRecords(), RecordingEvents()
    _, recurring = _reconcilers(kube, records, events)
    body = _body(admitted)
    kube.put(crds.RECURRING_TASK, body)
    try:
        await recurring.reconcile(body)
    except reconciling.InvalidSpec as error:
        try:
            resources.RecurringTaskSpec.model_validate(admitted.get("spec") or {})
        except ValidationError as refused:
            check_schema_gap(refused)
        _check_rejected_status(kube, records, events, reason="InvalidSchedule", message=str(error))
        return Verdict("RecurringTask", "invalid-spec", str(error))
    # One row per committed step (the next occurrence pending, then current), the first with its creation.
    recorded = [event.type for _, events in records.saved for event in events]
    assert "recurringtask.created" in recorded
    status = kube.statuses[-1][2]
    assert _ready(status)["status"] == "True", status
    assert len(kube.created) <= 1, "more than one occurrence at once"
    assert status.get("occurrences", 0) == len(kube.created)
    for occurrence in kube.created:  # the operator's own Task must be one the operator accepts
        occurrence_records = FakeRecords()
        occurrence_kube = FakeKube()
        occurrence_kube.put(crds.TASK, occurrence)
        occurrence_tasks, _ = _reconcilers(occurrence_kube, occurrence_records, RecordingEvents())
        await occurrence_tasks.reconcile(occurrence)
        assert _ready(occurrence_kube.statuses[-1][2])["status"] == "True"
    return Verdict("RecurringTask", "reconciled")


def _check_reminder(admitted: Body) -> Verdict:
    # The Reminder reconciler needs PostgreSQL: here its first two steps, parsing and timing, are
    # checked; the running operator does the rest (tests/operator/test_hostile_resources.py).
    try:
        spec = resources.ReminderSpec.model_validate(admitted.get("spec") or {})
    except ValidationError as refused:
        check_schema_gap(refused)
        return Verdict("Reminder", "invalid-spec", resources.describe_validation_error(refused))
    for due_at in (
        NOW + timedelta(days=1),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    ):
        try:
            fire = timing.fire_at(spec, due_at=due_at)
        except timing.ReminderError:
            continue
        body = _body(admitted)
        cronjob = reminder_objects.cronjob(reminder=body, fire_at=fire, job=reminder_objects.NotifyJob())
        assert len(cronjob["metadata"]["name"]) <= timing.MAX_CRONJOB_NAME_LENGTH
        timing.catch_up(fire, now=NOW, policy=timing.CatchUpPolicy())
    return Verdict("Reminder", "reconciled")


def check_manifest(
    manifest: Body,
    *,
    loop: asyncio.AbstractEventLoop,
    schemas: Mapping[str, Any] = SCHEMAS,
    admit_with: Admit = validation.admit,
) -> Verdict:
    """Refused naming the field, or accepted and then reconciled or reported as InvalidSpec; never a crash."""
    admitted, causes = admit(manifest, schemas=schemas, admit=admit_with)
    if causes:
        check_refusal(manifest, admitted, causes)
        return Verdict(manifest["kind"], "refused", causes[0].field)
    kind = manifest["kind"]
    if kind == "Task":
        return loop.run_until_complete(_reconcile_task(admitted))
    if kind == "RecurringTask":
        return loop.run_until_complete(_reconcile_recurring_task(admitted))
    return _check_reminder(admitted)
