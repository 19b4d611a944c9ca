"""Model-based tests of recurring series (issue #15): random interleavings against the running stack.

The lifecycle fault tests each pin one interleaving. Here hypothesis
(``RuleBasedStateMachine``) chooses them, from these rules:

* ``create_series`` (up to three per example; the first is made by ``start``):
  daily at 02:30 Europe/Berlin (in the spring-forward gap, repeated at
  fall-back), every 5 hours in Berlin, weekly in UTC, twice daily in
  New York with ``count: 3``, Mon/Wed/Fri in Berlin with ``until``; ``anchor``
  ``schedule`` or ``completion``; ``historyLimit`` 100 or 1 (pruning);
* ``complete_current``, ``reopen`` (``spec.completed: false``),
  ``complete_reopened``, ``skip_current`` (delete the current occurrence),
  ``delete_old_occurrence``, ``edit_schedule`` (shape and anchor),
  ``edit_title`` (the template), ``toggle_suspend``, ``delete_series``;
* ``add_reminder`` (a Reminder for the current occurrence: ``at`` now +15 min,
  +5 h, +26 h, or ``before: 1h``), ``remove_reminder``;
* ``advance_clock`` (10 min, 2 h, 1 d, 3 d) and ``advance_across_dst`` (to
  just after the Berlin DST change ahead): every example starts two days
  before a spring-forward or a fall-back change;
* ``at_once_*``: two actions on one series from two threads released
  together (the second 0, 5, 20 or 60 ms later): complete + edit schedule
  (F22), complete + delete series (F23), complete + edit title, complete +
  suspend/resume, complete + delete the same occurrence, complete + add a
  Reminder, skip + edit schedule, skip + delete series, edit schedule +
  delete series.

Everything goes through the real stack of the lifecycle suite (``stack.py``):
the API emulator over HTTP, PostgreSQL, the operator in its own thread with a
:class:`ManualClock`, an SMTP sink and the Dapr double. The test has a stack of
its own (inline delivery, so the operator e-mails reminders itself): its clock
is set months ahead of real time, and back, between examples, which the
package's shared stacks must not see. Each example has its own namespace.

A plain model (:class:`World`) says what must be true once the operator has
settled, from docs/RECURRENCE.md and docs/REMINDERS.md: which occurrence comes
next and when (the recurrence engine is the oracle of the slot — its rules
are tested against independent oracles in ``tests/domain/recurrence``; the lifecycle is
what is under test here), what ``occurrences``, ``currentTask``, ``phase``,
``nextDueAt`` and ``lastCompletedAt`` say, which Task objects and rows exist,
what each Reminder ends as. Two actions fired at once may be settled in either
order — unless the docs say which one wins (an edit of the schedule racing a
completion, or a skip: the edit, F22) — so the model offers each allowed
order and the stack must match one of them exactly. After every step the test
polls (with a deadline, never a fixed sleep) until the stack matches the model,
looks again ``QUIET`` seconds later, and otherwise reports everything that
differs. The invariants:

* every live series that is neither suspended nor ended has exactly one
  current occurrence: ``status.currentTask`` names an existing, open Task
  controlled by the series' uid, due when the model says;
* ``status.occurrences`` (and the row's) is the model's count and the number
  of the series' occurrence rows that were not withdrawn (an occurrence of an
  edited rule that the operator removed again, F17; only after such a race);
* ``lastCompletedAt`` is the recorded completion instant of the completion
  that last moved the series on — never an instant nobody completed at;
* each completion yields at most one next occurrence: the Task objects and
  rows of a series are exactly the model's;
* nothing of a deleted series survives: no Task object, its row and every
  occurrence row marked deleted, not in the REST shim's lists
  (``store/queries.py``: no series, no task of it that is live or open);
* every reminder of a task completed or deleted before it fired ends
  ``Cancelled`` in its object and its row, with no e-mail; one that fired
  while its task was open ends ``Sent`` (one e-mail) or ``Failed`` (missed:
  more than 24 h late);
* per subject, the outbox starts with ``*.created`` and ends at ``*.deleted``;
  no occurrence of a series is created after its ``recurringtask.deleted``;
  ``task.completed`` once per completion;
* at the end of each example, the whole record (``assert_whole_record``).

Due times only go forward (docs/RECURRENCE.md, "Changes that meet", rule 8):
under ``anchor: completion`` an occurrence completed early, whose next one
would by the completion fall on or before its own due time, is followed by
the one measured from its due time instead.

Rules have no preconditions (one with nothing to act on notes it and does
nothing), and after the first step that does not settle the remaining ones do
nothing and teardown reports it: how a race went must not change what data
hypothesis draws, or it cannot run an example again (while shrinking).

Bounded for ``make test``; ``make soak`` runs many examples. Environment:
``LIFECYCLE_MODEL_EXAMPLES`` (5), ``LIFECYCLE_MODEL_STEPS`` (8), ``LIFECYCLE_MODEL_SETTLE_SECONDS``
(20: how long a step may take to settle), ``LIFECYCLE_MODEL_DERANDOMIZE`` (1: the same
examples every run; 0: new ones), ``LIFECYCLE_MODEL_SHRINK`` (0: a failing example is
reported as found; 1: shrunk first, minutes here, as each try of a failing example
waits out the settle time, and a race does not fail every time it is tried) and
``LIFECYCLE_MODEL_TIMEOUT`` (900 s for the whole test; 0: none).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.faults.lifecycle import record as lifecycle_record
from tests.faults.lifecycle.record import assert_whole_record
from tests.faults.lifecycle.stack import OWNER, Json, Stack, running_stack, scheduler_pass
from tests.faults.record import ONCE_PER_SUBJECT, Sources, assert_nothing_lost_nothing_twice
from tests.kubeclient import ApiError, KubeClient
from todo_devstack import postgres
from todo_operator.api import names
from todo_operator.domain import occurrences, recurrence, resources
from todo_operator.kube import owners
from todo_operator.operator import objects
from todo_operator.store import queries


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


EXAMPLES = _env_int("LIFECYCLE_MODEL_EXAMPLES", 5)
STEPS = _env_int("LIFECYCLE_MODEL_STEPS", 8)
SETTLE_SECONDS = float(os.environ.get("LIFECYCLE_MODEL_SETTLE_SECONDS") or 20)
DERANDOMIZE = os.environ.get("LIFECYCLE_MODEL_DERANDOMIZE", "1") != "0"
TIMEOUT_SECONDS = _env_int("LIFECYCLE_MODEL_TIMEOUT", 900)
SHRINK = os.environ.get("LIFECYCLE_MODEL_SHRINK", "0") != "0"
QUIET = 0.5  # seconds: a settled state is looked at again this much later (a late duplicate shows)
POLL = 0.1

BERLIN = ZoneInfo("Europe/Berlin")
MAX_SERIES = 3
HISTORY_LIMITS = (100, 1)  # 1: completed occurrences are pruned as the series moves on
LOOK_BACK = timedelta(hours=24)  # docs/REMINDERS.md: later than this, a reminder is Missed
FIRE_SLACK = timedelta(minutes=1)  # a reminder this close to the look-back may end either way

SCHEDULE_FIELDS = ("rrule", "every", "interval", "start", "timeZone", "until", "count", "exdates")
Shape = Literal["berlin-daily-0230", "berlin-hourly", "utc-weekly", "newyork-count3", "berlin-mwf-until"]
SHAPES: tuple[Shape, ...] = (
    "berlin-daily-0230",
    "berlin-hourly",
    "utc-weekly",
    "newyork-count3",
    "berlin-mwf-until",
)
Anchor = Literal["schedule", "completion"]
ANCHORS: tuple[Anchor, ...] = ("schedule", "completion")
CLOCK_STEPS = (timedelta(minutes=10), timedelta(hours=2), timedelta(days=1), timedelta(days=3))
Pair = Literal[
    "complete+edit-schedule",
    "complete+delete-series",
    "complete+edit-title",
    "complete+toggle-suspend",
    "complete+skip",
    "complete+add-reminder",
    "skip+edit-schedule",
    "skip+delete-series",
    "edit-schedule+delete-series",
]
PAIRS: tuple[Pair, ...] = (
    "complete+edit-schedule",
    "complete+delete-series",
    "complete+edit-title",
    "complete+toggle-suspend",
    "complete+skip",
    "complete+add-reminder",
    "skip+edit-schedule",
    "skip+delete-series",
    "edit-schedule+delete-series",
)
LAGS = (0.0, 0.005, 0.02, 0.06)  # seconds between the two actions fired "at once"
ReminderWhen = Literal["at+15m", "at+5h", "at+26h", "before-1h"]
REMINDER_WHENS: tuple[ReminderWhen, ...] = ("at+15m", "at+5h", "at+26h", "before-1h")


@dataclasses.dataclass
class Counts:
    """What a run did, printed at its end (``make soak`` shows it)."""

    examples: int = 0
    steps: int = 0  # steps that acted
    idle: int = 0  # steps whose rule found nothing to act on
    at_once: int = 0
    rules: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def summary(self) -> str:
        used = ", ".join(f"{name} {count}" for name, count in sorted(self.rules.items()))
        return (
            f"model run: {self.examples} examples, {self.steps} steps ({self.at_once} of two actions at once,"
            f" and {self.idle} more that found nothing to act on)"
            f"; rules: {used}"
        )


COUNTS = Counts()


# ---------------------------------------------------------------------------------------------- time


def _utc(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def next_berlin_change(after: datetime) -> datetime:
    """The first DST change of Europe/Berlin after ``after`` (they happen on a whole UTC hour)."""
    instant = after.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    offset = instant.astimezone(BERLIN).utcoffset()
    while True:
        instant += timedelta(hours=1)
        if instant.astimezone(BERLIN).utcoffset() != offset:
            return instant


def _offset(instant: datetime) -> timedelta:
    offset = instant.astimezone(BERLIN).utcoffset()
    assert offset is not None
    return offset


def _first_changes(after: datetime) -> dict[str, datetime]:
    """The next spring-forward and fall-back changes of Europe/Berlin after ``after``."""
    found: dict[str, datetime] = {}
    change = after
    while len(found) < 2:
        change = next_berlin_change(change)
        forward = _offset(change) > _offset(change - timedelta(hours=1))
        found.setdefault("spring-forward" if forward else "fall-back", change)
    return found


@functools.cache
def changes() -> dict[str, datetime]:
    """Where examples start: after real time (the emulator stamps objects with it, and a series
    starts no earlier than its object), the same two instants for the whole run."""
    return _first_changes(datetime.now(tz=UTC) + timedelta(days=3))


def schedule_for(shape: Shape, now: datetime) -> Json:
    """A schedule of ``shape`` that starts after ``now`` (wall-clock starts, as users write them)."""
    if shape == "berlin-daily-0230":  # 02:30 falls in the spring-forward gap and repeats at fall-back
        day = (now.astimezone(BERLIN) + timedelta(days=1)).date()
        return {"every": "daily", "start": f"{day.isoformat()}T02:30:00", "timeZone": "Europe/Berlin"}
    if shape == "berlin-hourly":
        local = (now.astimezone(BERLIN) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        start = local.replace(tzinfo=None).isoformat(timespec="seconds")
        return {"rrule": "FREQ=HOURLY;INTERVAL=5", "start": start, "timeZone": "Europe/Berlin"}
    if shape == "utc-weekly":
        day = (now + timedelta(days=1)).date()
        return {"every": "weekly", "start": f"{day.isoformat()}T09:00:00", "timeZone": "UTC"}
    if shape == "newyork-count3":  # ends after three occurrences
        day = (now.astimezone(ZoneInfo("America/New_York")) + timedelta(days=1)).date()
        return {
            "rrule": "FREQ=DAILY;BYHOUR=9,18;BYMINUTE=0",
            "start": f"{day.isoformat()}T00:00:00",
            "timeZone": "America/New_York",
            "count": 3,
        }
    day = (now.astimezone(BERLIN) + timedelta(days=1)).date()
    return {  # ends on its until
        "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=7;BYMINUTE=30",
        "start": f"{day.isoformat()}T00:00:00",
        "timeZone": "Europe/Berlin",
        "until": f"{(day + timedelta(days=9)).isoformat()}T23:59:59",
    }


def compiled(schedule: Json) -> recurrence.Recurrence:
    return recurrence.Recurrence.compile(
        occurrences.schedule_spec(resources.Schedule.model_validate(schedule))
    )


# ---------------------------------------------------------------------------------------------- the model


@dataclasses.dataclass
class Occurrence:
    name: str
    series: str
    index: int
    due: datetime
    titles: set[str]  # the template titles it may carry (two when made while the title was edited)
    exists: bool = True  # the Task object (its row is marked deleted otherwise)
    completed: bool = False
    completed_at: datetime | None = None
    completions: int = 0  # task.completed events it must have
    skipped: bool = False  # deleted while its live series' current occurrence, not completed (F24)
    uncertain: bool = False  # completed (or skipped) and deleted at once: which one is recorded may vary
    maybe: bool = False  # made by an action that raced its series' deletion: it may never have been made


@dataclasses.dataclass
class Series:
    name: str
    uid: str
    schedule: Json
    anchor: Anchor
    title: str
    history_limit: int
    phase: Literal["Active", "Suspended", "Ended"] = "Active"
    suspend: bool = False
    occurrences: int = 0
    current: str | None = None
    last_completed_at: datetime | None = None
    deleted: bool = False
    names: list[str] = dataclasses.field(default_factory=list)  # its occurrences, oldest first


@dataclasses.dataclass
class Reminder:
    name: str
    uid: str
    task: str
    fire_at: datetime
    state: Literal["pending", "fired", "cancelled"] = "pending"
    lateness: timedelta | None = None
    deleted: bool = False

    def phases(self) -> set[str]:
        """The phases its object and row may end in."""
        if self.state == "pending":
            return {"Pending"}
        if self.state == "cancelled":
            return {"Cancelled"}
        assert self.lateness is not None
        if self.lateness < LOOK_BACK - FIRE_SLACK:
            return {"Sent"}
        if self.lateness > LOOK_BACK + FIRE_SLACK:
            return {"Failed"}
        return {"Sent", "Failed"}


@dataclasses.dataclass
class World:
    """What must be true once the operator has settled (docs/RECURRENCE.md, docs/REMINDERS.md)."""

    now: datetime
    series: dict[str, Series] = dataclasses.field(default_factory=dict)
    occurrences: dict[str, Occurrence] = dataclasses.field(default_factory=dict)
    reminders: dict[str, Reminder] = dataclasses.field(default_factory=dict)

    def copy(self) -> World:
        return copy.deepcopy(self)

    def of(self, series: Series) -> list[Occurrence]:
        return [self.occurrences[name] for name in series.names]

    def current(self, series: Series) -> Occurrence | None:
        return self.occurrences[series.current] if series.current else None

    # --- what the operator must do ------------------------------------------------------------------

    def _spawn(self, series: Series, due: datetime) -> None:
        index = series.occurrences + 1
        name = occurrences.occurrence_name(series.name, due)
        self.occurrences[name] = Occurrence(
            name=name, series=series.name, index=index, due=due, titles={series.title}
        )
        series.names.append(name)
        series.current = name
        series.occurrences = index
        series.phase = "Active"

    def _reconcile(self, series: Series, *, edited: bool) -> None:
        """One reconcile of the series: move on if its current occurrence is done, then prune history."""
        if series.deleted:
            return
        self._advance(series, edited=edited)
        if series.occurrences - 1 > series.history_limit:
            done = [o for o in self.of(series) if o.exists and o.completed and o.name != series.current]
            for old in sorted(done, key=lambda o: o.index, reverse=True)[series.history_limit :]:
                old.exists = False

    def _advance(self, series: Series, *, edited: bool) -> None:
        if series.phase == "Ended" and (not edited or series.suspend):
            return  # an ended series stays ended until its spec is edited (suspending is no such edit)
        if series.phase == "Ended" and not self.occurrences[series.current or ""].exists:
            return  # rule 6: its last occurrence is gone, so is the due time the next must follow
        if series.suspend:
            series.phase = "Suspended"
            # Rule 6: nothing new while suspended, but a completion is history all the same.
            suspended_current = self.current(series)
            if suspended_current is not None and suspended_current.exists and suspended_current.completed:
                series.last_completed_at = suspended_current.completed_at
            return
        current = self.current(series)
        assert current is not None
        if current.exists and not current.completed:
            series.phase = "Active"
            return
        if current.exists:  # completed: the series moves on from the recorded completion
            assert current.completed_at is not None
            moved_on_at = current.completed_at
            series.last_completed_at = current.completed_at
        else:  # deleted while current: a skip, from its due time or now if that has passed (F24)
            moved_on_at = max(current.due, self.now)
        due = recurrence.next_due(
            compiled(series.schedule),
            anchor=series.anchor,
            previous_due=current.due,
            completed_at=moved_on_at,
            occurrences_so_far=series.occurrences,
        )
        if due is not None and due <= current.due:
            # Rule 8: completed early under the completion anchor, measured from its due time.
            due = recurrence.next_due(
                compiled(series.schedule),
                anchor=series.anchor,
                previous_due=current.due,
                completed_at=current.due,
                occurrences_so_far=series.occurrences,
            )
        if due is None:
            series.phase = "Ended"
            return
        self._spawn(series, due.astimezone(UTC))

    def _cancel_reminders(self, task: str) -> None:
        for reminder in self.reminders.values():
            if reminder.task == task and reminder.state == "pending":
                reminder.state = "cancelled"

    # --- what a user does -----------------------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        uid: str,
        created_at: datetime,
        schedule: Json,
        anchor: Anchor,
        title: str,
        history_limit: int,
    ) -> None:
        series = Series(
            name=name, uid=uid, schedule=schedule, anchor=anchor, title=title, history_limit=history_limit
        )
        self.series[name] = series
        # The first occurrence is the first slot at or after the creation instant (the emulator's).
        first = compiled(schedule).first_at_or_after(created_at)
        assert first is not None
        self._spawn(series, first.astimezone(UTC))

    def complete(self, task: str) -> None:
        occurrence = self.occurrences[task]
        series = self.series[occurrence.series]
        if not occurrence.exists:
            return  # deleted first: nothing to complete
        if series.deleted:
            occurrence.uncertain = True
            return
        occurrence.completed = True
        occurrence.completed_at = self.now
        occurrence.completions += 1
        self._cancel_reminders(task)
        self._reconcile(series, edited=False)

    def reopen(self, task: str) -> None:
        occurrence = self.occurrences[task]
        occurrence.completed = False
        occurrence.completed_at = None

    def delete_occurrence(self, task: str) -> None:
        occurrence = self.occurrences[task]
        series = self.series[occurrence.series]
        if not occurrence.exists:
            return
        occurrence.exists = False
        self._cancel_reminders(task)
        if series.current == task and not series.deleted:
            occurrence.skipped = not occurrence.completed
            self._reconcile(series, edited=False)

    def edit(
        self,
        series_name: str,
        *,
        schedule: Json | None = None,
        anchor: Anchor | None = None,
        title: str | None = None,
        suspend: bool | None = None,
    ) -> None:
        series = self.series[series_name]
        if series.deleted:
            return
        if schedule is not None:
            series.schedule = schedule
        if anchor is not None:
            series.anchor = anchor
        if title is not None:
            series.title = title
        if suspend is not None:
            series.suspend = suspend
        self._reconcile(series, edited=True)

    def delete_series(self, series_name: str) -> None:
        series = self.series[series_name]
        series.deleted = True
        for occurrence in self.of(series):
            occurrence.exists = False
            self._cancel_reminders(occurrence.name)

    def add_reminder(self, *, name: str, uid: str, task: str, fire_at: datetime) -> None:
        occurrence = self.occurrences[task]
        reminder = Reminder(name=name, uid=uid, task=task, fire_at=fire_at)
        self.reminders[name] = reminder
        if not occurrence.exists or occurrence.completed:
            reminder.state = "cancelled"
        elif fire_at <= self.now:
            reminder.state, reminder.lateness = "fired", self.now - fire_at

    def remove_reminder(self, name: str) -> None:
        reminder = self.reminders[name]
        reminder.deleted = True
        if reminder.state == "pending":
            reminder.state = "cancelled"

    def move_clock(self, to: datetime) -> None:
        self.now = to
        for reminder in self.reminders.values():
            if reminder.state == "pending" and reminder.fire_at <= to:
                reminder.state, reminder.lateness = "fired", to - reminder.fire_at


# ---------------------------------------------------------------------------------------------- observing


@dataclasses.dataclass(frozen=True, kw_only=True)
class Observed:
    """One look at the namespace: objects in the emulator, rows in PostgreSQL, e-mails."""

    recurring_tasks: dict[str, Json]
    tasks: dict[str, Json]
    reminders: dict[str, Json]
    recurring_rows: list[Json]
    task_rows: list[Json]
    reminder_rows: list[Json]
    mails: collections.Counter[str]  # reminder uid -> e-mails

    @classmethod
    def take(cls, stack: Stack, namespace: str) -> Observed:
        def by_name(plural: str) -> dict[str, Json]:
            return {obj["metadata"]["name"]: obj for obj in stack.objects(plural, namespace)}

        with psycopg.connect(stack.database_url, row_factory=dict_row, autocommit=True) as connection:
            recurring_rows = connection.execute(
                "SELECT uid::text AS uid, name, phase, current_task, next_due_at, occurrences,"
                " last_completed_at, generation, deleted_at FROM recurring_tasks WHERE namespace = %s",
                (namespace,),
            ).fetchall()
            task_rows = connection.execute(
                "SELECT uid::text AS uid, name, phase, due_at, completed, completed_at, title,"
                " recurring_task_uid::text AS recurring_task_uid, occurrence, deleted_at"
                " FROM tasks WHERE namespace = %s",
                (namespace,),
            ).fetchall()
            reminder_rows = connection.execute(
                "SELECT uid::text AS uid, name, phase, deleted_at FROM reminders WHERE namespace = %s",
                (namespace,),
            ).fetchall()
        mails = collections.Counter(
            str(message["X-Todo-Reminder"]) for message in stack.smtp.messages if message["X-Todo-Reminder"]
        )
        return cls(
            recurring_tasks=by_name("recurringtasks"),
            tasks=by_name("tasks"),
            reminders=by_name("reminders"),
            recurring_rows=recurring_rows,
            task_rows=task_rows,
            reminder_rows=reminder_rows,
            mails=mails,
        )


def _controller_uid(task: Json) -> str | None:
    owner = owners.controller_of(task, kind="RecurringTask")
    return owner.get("uid") if owner else None


def _settled(obj: Json) -> bool:
    observed: object = (obj.get("status") or {}).get("observedGeneration")
    generation: object = obj["metadata"].get("generation")
    return observed == generation


def _withdrawn(rows: list[Json]) -> list[Json]:
    """Rows of occurrences the operator removed again: deleted, repeating the index of another row (F17)."""
    by_index: dict[int, list[Json]] = collections.defaultdict(list)
    for row in rows:
        by_index[row["occurrence"]].append(row)
    withdrawn = []
    for same in by_index.values():
        if len(same) > 1:
            live = [row for row in same if row["deleted_at"] is None]
            keep = live[0] if live else min(same, key=lambda row: row["due_at"])
            withdrawn += [row for row in same if row is not keep]
    return withdrawn


def problems(world: World, seen: Observed) -> list[str]:
    """Everything in which the stack differs from the model (empty: settled as the model says)."""
    found: list[str] = []
    known_tasks = set(world.occurrences)
    for name, task in seen.tasks.items():
        if name not in known_tasks:
            found.append(f"task {name} exists but the model has no such occurrence")
        if not _settled(task):
            found.append(f"task {name}: generation {task['metadata'].get('generation')} not observed yet")
        spec_done = bool(task["spec"].get("completed"))
        if ((task.get("status") or {}).get("phase") == "Completed") != spec_done:
            found.append(f"task {name}: completed={spec_done} but status.phase {task.get('status')}")
    for series in world.series.values():
        found += (_deleted_series_problems if series.deleted else _live_series_problems)(world, series, seen)
    found += _reminder_problems(world, seen)
    return found


def _series_rows(series: Series, seen: Observed) -> list[Json]:
    return [row for row in seen.task_rows if row["recurring_task_uid"] == series.uid]


def _live_series_problems(world: World, series: Series, seen: Observed) -> list[str]:
    found: list[str] = []
    name = series.name
    obj = seen.recurring_tasks.get(name)
    if obj is None or obj["metadata"]["uid"] != series.uid:
        return [f"{name}: the RecurringTask object is gone"]
    if not _settled(obj):
        found.append(f"{name}: generation {obj['metadata']['generation']} not observed yet")
    status = obj.get("status") or {}
    row = next((r for r in seen.recurring_rows if r["uid"] == series.uid), None)
    shown = {
        "phase": status.get("phase"),
        "occurrences": status.get("occurrences"),
        "currentTask": status.get("currentTask"),
        "lastCompletedAt": _utc(status.get("lastCompletedAt")),
    }
    wanted = {
        "phase": series.phase,
        "occurrences": series.occurrences,
        "currentTask": series.current,
        "lastCompletedAt": series.last_completed_at,
    }
    if shown != wanted:
        found.append(f"{name}: status {shown}, expected {wanted}")
    last = shown["lastCompletedAt"]
    if isinstance(last, datetime) and last > world.now:
        found.append(f"{name}: lastCompletedAt {last.isoformat()} is in the future (now {world.now})")
    if row is None:
        found.append(f"{name}: no recurring_tasks row")
    else:
        recorded = {
            "phase": row["phase"],
            "occurrences": row["occurrences"],
            "currentTask": row["current_task"],
            "lastCompletedAt": row["last_completed_at"],
        }
        if recorded != wanted or row["deleted_at"] is not None:
            found.append(f"{name}: row {recorded} (deleted {row['deleted_at']}), expected {wanted}")
        if row["generation"] != obj["metadata"]["generation"]:
            found.append(
                f"{name}: row of generation {row['generation']}, object {obj['metadata']['generation']}"
            )
    current = world.current(series)
    if series.phase == "Active" and current is not None:
        task = seen.tasks.get(current.name)
        if task is None or task["metadata"].get("deletionTimestamp"):
            found.append(f"{name}: its current occurrence {current.name} does not exist")
        else:
            if task["spec"].get("completed"):
                found.append(f"{name}: its current occurrence {current.name} is not open")
            if _controller_uid(task) != series.uid:
                found.append(f"{name}: its current occurrence {current.name} is not controlled by its uid")
            if _utc(task["spec"].get("dueAt")) != current.due:
                found.append(
                    f"{name}: {current.name} due {task['spec'].get('dueAt')}, expected {current.due}"
                )
        if _utc(status.get("nextDueAt")) != current.due:
            found.append(f"{name}: nextDueAt {status.get('nextDueAt')}, expected {current.due.isoformat()}")
    # The Task objects it controls are exactly the model's occurrences, each open or completed as modelled.
    owned = {
        task_name: bool(task["spec"].get("completed"))
        for task_name, task in seen.tasks.items()
        if _controller_uid(task) == series.uid
    }
    modelled = {o.name: o.completed for o in world.of(series) if o.exists}
    if owned != modelled:
        found.append(f"{name}: occurrence objects (name: completed) {owned}, expected {modelled}")
    for occurrence in world.of(series):
        task = seen.tasks.get(occurrence.name)
        if occurrence.exists and task is not None and task["spec"].get("title") not in occurrence.titles:
            found.append(
                f"{occurrence.name}: title {task['spec'].get('title')!r}, expected one of {occurrence.titles}"
            )
    found += _occurrence_row_problems(series, world, seen)
    return found


def _occurrence_row_problems(series: Series, world: World, seen: Observed) -> list[str]:
    found: list[str] = []
    rows = _series_rows(series, seen)
    withdrawn = _withdrawn(rows)
    if withdrawn:  # nothing an overtaken decision planned is ever made (docs/RECURRENCE.md, rule 1)
        found.append(f"{series.name}: occurrence(s) made and withdrawn {[r['name'] for r in withdrawn]}")
    counted = [row for row in rows if row not in withdrawn]
    if sorted(row["occurrence"] for row in counted) != list(range(1, series.occurrences + 1)):
        found.append(
            f"{series.name}: occurrence rows {sorted((r['occurrence'], r['name']) for r in counted)},"
            f" expected occurrences 1..{series.occurrences} once each"
        )
    by_name = {row["name"]: row for row in counted}
    for occurrence in world.of(series):
        row = by_name.get(occurrence.name)
        if row is None:
            found.append(f"{occurrence.name}: no row")
            continue
        recorded = (row["occurrence"], row["due_at"], row["deleted_at"] is None)
        if recorded != (occurrence.index, occurrence.due, occurrence.exists):
            found.append(
                f"{occurrence.name}: row (index, due, live) {recorded},"
                f" expected {(occurrence.index, occurrence.due, occurrence.exists)}"
            )
        if occurrence.uncertain:
            continue
        if row["completed"] != occurrence.completed or row["completed_at"] != occurrence.completed_at:
            found.append(
                f"{occurrence.name}: row completed {row['completed']} at {row['completed_at']},"
                f" expected {occurrence.completed} at {occurrence.completed_at}"
            )
        if (row["phase"] == "Skipped") != occurrence.skipped:
            found.append(f"{occurrence.name}: row phase {row['phase']}, skipped: {occurrence.skipped}")
    return found


def _deleted_series_problems(world: World, series: Series, seen: Observed) -> list[str]:
    found: list[str] = []
    name = series.name
    if name in seen.recurring_tasks:
        found.append(f"{name}: deleted, but its RecurringTask object remains")
    rows = [r for r in seen.recurring_rows if r["uid"] == series.uid]
    if [r["deleted_at"] is not None for r in rows] != [True]:
        found.append(f"{name}: deleted, but its row is {[(r['phase'], r['deleted_at']) for r in rows]}")
    survivors = [
        task_name
        for task_name, task in seen.tasks.items()
        if _controller_uid(task) == series.uid
        or (task["metadata"].get("labels") or {}).get(objects.LABEL_RECURRING_TASK_UID) == series.uid
    ]
    if survivors:
        found.append(f"{name}: deleted, but its Tasks {sorted(survivors)} survive")
    task_rows = _series_rows(series, seen)
    live_rows = sorted(row["name"] for row in task_rows if row["deleted_at"] is None)
    if live_rows:
        found.append(f"{name}: deleted, but the rows of {live_rows} are live")
    counted = [row for row in task_rows if row not in _withdrawn(task_rows)]
    indexes = sorted(row["occurrence"] for row in counted)
    if rows and indexes != list(range(1, rows[0]["occurrences"] + 1)):
        found.append(
            f"{name}: deleted with {rows[0]['occurrences']} occurrences recorded, but occurrence rows"
            f" {sorted((r['occurrence'], r['name']) for r in counted)}"
        )
    for occurrence in world.of(series):
        if not occurrence.maybe and occurrence.name not in {row["name"] for row in task_rows}:
            found.append(f"{occurrence.name}: no row")
    return found


def _reminder_problems(world: World, seen: Observed) -> list[str]:
    found: list[str] = []
    rows = {row["uid"]: row for row in seen.reminder_rows}
    for reminder in world.reminders.values():
        phases = reminder.phases()
        obj = seen.reminders.get(reminder.name)
        if obj is not None and obj["metadata"]["uid"] != reminder.uid:
            obj = None
        if reminder.deleted and obj is not None:
            found.append(f"reminder {reminder.name}: deleted, but its object remains")
        if not reminder.deleted:
            if obj is None:
                found.append(f"reminder {reminder.name}: its object is gone")
            elif (obj.get("status") or {}).get("phase") not in phases or not _settled(obj):
                found.append(
                    f"reminder {reminder.name}: object phase {(obj.get('status') or {}).get('phase')}"
                    f" (settled: {_settled(obj)}), expected {sorted(phases)}"
                )
        row = rows.get(reminder.uid)
        if row is None:
            found.append(f"reminder {reminder.name}: no row (expected {sorted(phases)})")
            continue
        if row["phase"] not in phases or (row["deleted_at"] is not None) != reminder.deleted:
            found.append(
                f"reminder {reminder.name}: row {row['phase']} (deleted {row['deleted_at']}),"
                f" expected {sorted(phases)} (deleted: {reminder.deleted})"
            )
        if obj is not None and (obj.get("status") or {}).get("phase") != row["phase"]:
            found.append(
                f"reminder {reminder.name}: object says {(obj.get('status') or {}).get('phase')},"
                f" row {row['phase']}"
            )
        mails = seen.mails[reminder.uid]
        if mails != (1 if row["phase"] == "Sent" else 0):
            found.append(f"reminder {reminder.name}: {mails} e-mail(s) but its row is {row['phase']}")
    return found


def outbox_order_problems(world: World, outbox: list[Json], namespace: str) -> list[str]:
    """Per subject: created first, nothing after deleted; per series: nothing made after its deletion."""
    found: list[str] = []
    by_subject: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for event in outbox:
        by_subject[event["subject"]].append((event["id"], event["event_type"]))
    for subject, events in by_subject.items():
        kind = events[0][1].split(".")[0]
        if kind in ("task", "recurringtask") and events[0][1] != f"{kind}.created":
            found.append(f"{subject}: its first event is {events[0][1]}, not {kind}.created")
        ends = [i for i, (_, event_type) in enumerate(events) if event_type == f"{kind}.deleted"]
        if ends and ends[0] != len(events) - 1:
            found.append(f"{subject}: events after {kind}.deleted: {[t for _, t in events[ends[0] + 1 :]]}")
    for series in world.series.values():
        ended = [
            i for i, t in by_subject.get(f"{namespace}/{series.name}", []) if t == "recurringtask.deleted"
        ]
        if series.deleted and not ended:
            found.append(f"{series.name}: deleted without a recurringtask.deleted event")
        if not ended:
            continue
        occurrence_subjects = {
            f"{namespace}/{row_name}"
            for row_name in world.occurrences
            if row_name.startswith(f"{series.name}-")
        }
        late = [
            (event["event_type"], event["subject"])
            for event in outbox
            if event["id"] > ended[0]
            and event["event_type"] == "task.created"
            and (
                event["subject"] in occurrence_subjects
                or event["subject"].startswith(f"{namespace}/{series.name}-")
            )
        ]
        if late:
            found.append(f"{series.name}: occurrences created after recurringtask.deleted: {late}")
    return found


def live_list_problems(world: World, stack: Stack, namespace: str) -> list[str]:
    """What the REST shim's lists (``store/queries.py``) show: no deleted series, no live task of one."""

    async def read() -> tuple[list[queries.RecurringTaskRead], dict[str, list[queries.TaskRead]]]:
        async with AsyncConnectionPool(stack.database_url, min_size=1, max_size=1, open=False) as pool:
            reads = queries.Queries(pool)
            recurring = await reads.list_recurring_tasks(
                owner=OWNER,
                owner_prefix=names.owner_prefix(OWNER),
                namespace=namespace,
                after_name=None,
                limit=100,
            )
            tasks = {
                series.name: await reads.list_tasks(
                    queries.TaskQuery(
                        owner=OWNER, namespace=namespace, now=world.now, recurring_task_uid=series.uid
                    ),
                    after=None,
                    limit=500,
                )
                for series in world.series.values()
            }
            return recurring, tasks

    recurring, tasks = asyncio.run(read())
    found: list[str] = []
    listed = {record.name: record for record in recurring}
    for series in world.series.values():
        if series.deleted:
            if series.name in listed:
                found.append(f"{series.name}: deleted, but the REST list of recurring tasks shows it")
            shown = [(t.name, t.completed, t.live) for t in tasks[series.name] if t.live or not t.completed]
            if shown:
                found.append(
                    f"{series.name}: deleted, but the REST task list shows {shown} (name, done, live)"
                )
            continue
        record = listed.get(series.name)
        if record is None:
            found.append(f"{series.name}: missing from the REST list of recurring tasks")
        elif (record.occurrences, record.current_task, record.last_completed_at) != (
            series.occurrences,
            series.current,
            series.last_completed_at,
        ):
            found.append(
                f"{series.name}: the REST list shows {record.occurrences} occurrences, current"
                f" {record.current_task}, last completed {record.last_completed_at}"
            )
        live = sorted(t.name for t in tasks[series.name] if t.live)
        if live != sorted(o.name for o in world.of(series) if o.exists):
            found.append(f"{series.name}: the REST task list shows live {live}")
    return found


# ---------------------------------------------------------------------------------------------- the machine


class SeriesLifecycle(RuleBasedStateMachine):
    """Random interleavings of what users do to recurring series, checked against :class:`World`."""

    def __init__(self, stack: Stack) -> None:
        super().__init__()
        COUNTS.examples += 1
        self.stack = stack
        self.namespace = stack.new_namespace("model")
        self.kube = stack.kube
        # The first step that did not settle as the model says. The steps after it draw their data
        # as usual but do nothing, and teardown reports it: a race that fails at another step when
        # hypothesis runs the example again then does not change what hypothesis sees drawn.
        self.failure: str | None = None
        self.serial = 0
        self.world = World(now=stack.clock.now())

    @initialize(
        change=st.sampled_from(("spring-forward", "fall-back")),
        shape=st.sampled_from(SHAPES),
        anchor=st.sampled_from(ANCHORS),
        history_limit=st.sampled_from(HISTORY_LIMITS),
    )
    def start(self, change: str, shape: Shape, anchor: Anchor, history_limit: int) -> None:
        """The clock two days before a DST change in Berlin (steps of the clock cross it), and a series.

        Every example starts at one of the same two instants (the clock goes back between
        examples; what an earlier example left in its namespace may see that, this one does not),
        so a failing example runs again the same way while hypothesis shrinks it.
        """
        start = changes()[change] - timedelta(days=2)
        self.stack.clock.set(start)
        scheduler_pass(self.stack, start)
        self.world = World(now=start)
        note(
            f"namespace {self.namespace}, clock {start.isoformat()}"
            f" ({change} change at {changes()[change].isoformat()})"
        )
        self._create_series(shape, anchor, history_limit)

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def _acted(self, rule: str) -> None:
        COUNTS.steps += 1
        COUNTS.rules[rule] += 1

    def _halted(self) -> bool:
        if self.failure is not None:
            note("(skipped: an earlier step failed)")
        return self.failure is not None

    def _pick[T](self, options: list[T], index: int, rule: str) -> T | None:
        """The ``index``-th option (modulo), or None (noted) when the rule has nothing to act on now."""
        if self._halted():
            return None
        if not options:
            COUNTS.idle += 1
            note(f"({rule}: nothing to act on)")
            return None
        self._acted(rule)
        return options[index % len(options)]

    # --- picking what to act on -------------------------------------------------------------------------

    def _live(self) -> list[Series]:
        return [s for s in self.world.series.values() if not s.deleted]

    def _with_open_current(self) -> list[Series]:
        """Live series whose current occurrence is open (what users complete, skip, remind about)."""
        found = []
        for series in self._live():
            current = self.world.current(series)
            if current is not None and current.exists and not current.completed:
                found.append(series)
        return found

    def _completed_objects(self) -> list[Occurrence]:
        return sorted(
            (o for o in self.world.occurrences.values() if o.exists and o.completed), key=lambda o: o.name
        )

    def _reopened(self) -> list[Occurrence]:
        """Open occurrences that are not their series' current one (reopened after it moved on)."""
        return sorted(
            (
                o
                for o in self.world.occurrences.values()
                if o.exists and not o.completed and self.world.series[o.series].current != o.name
            ),
            key=lambda o: o.name,
        )

    def _old(self) -> list[Occurrence]:
        return sorted(
            (
                o
                for o in self.world.occurrences.values()
                if o.exists and self.world.series[o.series].current != o.name
            ),
            key=lambda o: o.name,
        )

    def _live_reminders(self) -> list[Reminder]:
        return sorted((r for r in self.world.reminders.values() if not r.deleted), key=lambda r: r.name)

    # --- acting ----------------------------------------------------------------------------------------

    def _complete(self, kube: KubeClient, task: str, *, completed: bool = True) -> None:
        kube.patch("tasks", self.namespace, task, {"spec": {"completed": completed}})

    def _schedule_patch(self, schedule: Json, anchor: Anchor) -> Json:
        return {"spec": {"schedule": {key: schedule.get(key) for key in SCHEDULE_FIELDS}, "anchor": anchor}}

    def _reminder_manifest(self, name: str, task: str, when: ReminderWhen) -> tuple[Json, datetime]:
        spec: Json = {"taskRef": {"name": task}}
        if when == "before-1h":
            spec["before"] = "1h"
            fire_at = self.world.occurrences[task].due - timedelta(hours=1)
        else:
            offset = {
                "at+15m": timedelta(minutes=15),
                "at+5h": timedelta(hours=5),
                "at+26h": timedelta(hours=26),
            }
            fire_at = self.world.now + offset[when]
            spec["at"] = fire_at.isoformat()
        return {"metadata": {"name": name}, "spec": spec}, fire_at

    # --- settling ---------------------------------------------------------------------------------------

    def settle(self, candidates: Mapping[str, World]) -> None:
        """Wait until the stack matches one of the allowed outcomes, and take it as the model.

        Matched twice, ``QUIET`` seconds apart: a late duplicate (an occurrence made by a stale
        reconcile, an e-mail) shows in the second look.
        """
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            seen = Observed.take(self.stack, self.namespace)
            found = {label: problems(world, seen) for label, world in candidates.items()}
            matching = [label for label, listed in found.items() if not listed]
            if matching:
                time.sleep(QUIET)
                seen = Observed.take(self.stack, self.namespace)
                found = {label: problems(candidates[label], seen) for label in matching}
                matching = [label for label, listed in found.items() if not listed]
                if matching:
                    if len(candidates) > 1:
                        note(f"  settled as: {matching[0]}")
                    self.world = candidates[matching[0]]
                    return
            if time.monotonic() > deadline:
                report = "\n".join(
                    f"  as {label}:\n    " + "\n    ".join(listed) for label, listed in found.items()
                )
                self.failure = (
                    f"{self.namespace} did not settle as the model says within {SETTLE_SECONDS:.0f} s"
                    f" (clock {self.world.now.isoformat()}):\n{report}"
                )
                note("  -> did not settle as the model says (reported at the end)")
                return
            time.sleep(POLL)

    def apply(self, change: Callable[[World], None]) -> None:
        world = self.world.copy()
        change(world)
        self.settle({"the model": world})

    def at_once(
        self, first: Callable[[KubeClient], None], second: Callable[[KubeClient], None], *, lag: float
    ) -> None:
        """Two requests from two threads, released together: nothing waits for the operator in between.

        The second one leaves ``lag`` seconds later (0: at the same moment); a few milliseconds put
        it where the operator is halfway through reacting to the first.
        """
        if lag:
            note(f"  (the second {lag * 1000:.0f} ms after the first)")
        barrier = threading.Barrier(2)
        refused: list[str] = []

        def run(action: Callable[[KubeClient], None], delay: float) -> None:
            client = KubeClient(self.stack.api.url)
            try:
                barrier.wait(timeout=10)
                if delay:
                    time.sleep(delay)
                action(client)
            except ApiError as error:
                if error.code != 404:  # the other action may have removed the target first
                    refused.append(str(error))
                note(f"  one action found its object gone: {error}")
            finally:
                client.close()

        threads = [threading.Thread(target=run, args=pair) for pair in ((first, 0.0), (second, lag))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        if refused:
            self.failure = f"{self.namespace}: a request was refused: {refused}"

    # --- rules ------------------------------------------------------------------------------------------

    # No rule has a precondition: hypothesis must draw the same data each time it runs a sequence
    # of steps again (while shrinking), and what the stack did in a race (which preconditions would
    # read) may differ from one run to the next. A rule with nothing to act on says so and does nothing.

    @rule(
        shape=st.sampled_from(SHAPES),
        anchor=st.sampled_from(ANCHORS),
        history_limit=st.sampled_from(HISTORY_LIMITS),
    )
    def create_series(self, shape: Shape, anchor: Anchor, history_limit: int) -> None:
        if self._halted():
            return
        if len(self.world.series) >= MAX_SERIES:
            COUNTS.idle += 1
            note(f"(create_series: there are {MAX_SERIES} series already)")
            return
        self._create_series(shape, anchor, history_limit)

    def _create_series(self, shape: Shape, anchor: Anchor, history_limit: int) -> None:
        self._acted("create_series")
        name = self._next("s")
        schedule = schedule_for(shape, self.world.now)
        title = f"Series {name}"
        manifest = {
            "metadata": {"name": name},
            "spec": {
                "schedule": schedule,
                "anchor": anchor,
                "historyLimit": history_limit,
                "taskTemplate": {"title": title, "owner": OWNER},
            },
        }
        created = self.kube.create("recurringtasks", self.namespace, manifest)
        meta = created["metadata"]
        note(f"create {name}: {schedule}, anchor {anchor}, historyLimit {history_limit}")
        created_at = _utc(meta["creationTimestamp"])
        assert created_at is not None
        self.apply(
            lambda w: w.create(
                name=name,
                uid=meta["uid"],
                created_at=created_at,
                schedule=schedule,
                anchor=anchor,
                title=title,
                history_limit=history_limit,
            )
        )

    @rule(series=st.integers(0, MAX_SERIES - 1))
    def complete_current(self, series: int) -> None:
        target = self._pick(self._with_open_current(), series, "complete_current")
        if target is None:
            return
        task = target.current
        assert task is not None
        note(f"complete {task} (the current occurrence of {target.name})")
        self._complete(self.kube, task)
        self.apply(lambda w: w.complete(task))

    @rule(which=st.integers(0, 20))
    def reopen(self, which: int) -> None:
        found = self._pick(self._completed_objects(), which, "reopen")
        if found is None:
            return
        task = found.name
        note(f"reopen {task} (spec.completed false)")
        self._complete(self.kube, task, completed=False)
        self.apply(lambda w: w.reopen(task))

    @rule(which=st.integers(0, 20))
    def complete_reopened(self, which: int) -> None:
        found = self._pick(self._reopened(), which, "complete_reopened")
        if found is None:
            return
        task = found.name
        note(f"complete {task} again (reopened, not the current occurrence)")
        self._complete(self.kube, task)
        self.apply(lambda w: w.complete(task))

    @rule(
        series=st.integers(0, MAX_SERIES - 1), shape=st.sampled_from(SHAPES), anchor=st.sampled_from(ANCHORS)
    )
    def edit_schedule(self, series: int, shape: Shape, anchor: Anchor) -> None:
        found = self._pick(self._live(), series, "edit_schedule")
        if found is None:
            return
        target = found.name
        schedule = schedule_for(shape, self.world.now)
        note(f"edit the schedule of {target}: {schedule}, anchor {anchor}")
        self.kube.patch("recurringtasks", self.namespace, target, self._schedule_patch(schedule, anchor))
        self.apply(lambda w: w.edit(target, schedule=schedule, anchor=anchor))

    @rule(series=st.integers(0, MAX_SERIES - 1))
    def edit_title(self, series: int) -> None:
        found = self._pick(self._live(), series, "edit_title")
        if found is None:
            return
        target = found.name
        title = f"Title {self._next('t')}"
        note(f"edit the template title of {target}: {title!r}")
        self.kube.patch(
            "recurringtasks", self.namespace, target, {"spec": {"taskTemplate": {"title": title}}}
        )
        self.apply(lambda w: w.edit(target, title=title))

    @rule(series=st.integers(0, MAX_SERIES - 1))
    def skip_current(self, series: int) -> None:
        target = self._pick(self._with_open_current(), series, "skip_current")
        if target is None:
            return
        task = target.current
        assert task is not None
        note(f"delete {task} (skip the current occurrence of {target.name})")
        self.kube.delete("tasks", self.namespace, task)
        self.apply(lambda w: w.delete_occurrence(task))

    @rule(which=st.integers(0, 20))
    def delete_old_occurrence(self, which: int) -> None:
        found = self._pick(self._old(), which, "delete_old_occurrence")
        if found is None:
            return
        task = found.name
        note(f"delete {task} (not the current occurrence)")
        self.kube.delete("tasks", self.namespace, task)
        self.apply(lambda w: w.delete_occurrence(task))

    @rule(series=st.integers(0, MAX_SERIES - 1))
    def delete_series(self, series: int) -> None:
        found = self._pick(self._live(), series, "delete_series")
        if found is None:
            return
        target = found.name
        note(f"delete the series {target}")
        self.kube.delete("recurringtasks", self.namespace, target)
        self.apply(lambda w: w.delete_series(target))

    @rule(series=st.integers(0, MAX_SERIES - 1))
    def toggle_suspend(self, series: int) -> None:
        target = self._pick(self._live(), series, "toggle_suspend")
        if target is None:
            return
        suspend = not target.suspend
        name = target.name
        note(f"{'suspend' if suspend else 'resume'} {name}")
        self.kube.patch("recurringtasks", self.namespace, name, {"spec": {"suspend": suspend}})
        self.apply(lambda w: w.edit(name, suspend=suspend))

    @rule(series=st.integers(0, MAX_SERIES - 1), when=st.sampled_from(REMINDER_WHENS))
    def add_reminder(self, series: int, when: ReminderWhen) -> None:
        target = self._pick(self._with_open_current(), series, "add_reminder")
        if target is None:
            return
        task = target.current
        assert task is not None
        name = self._next("r")
        manifest, fire_at = self._reminder_manifest(name, task, when)
        note(f"add the Reminder {name} for {task}: {manifest['spec']} (fires {fire_at.isoformat()})")
        uid = self.kube.create("reminders", self.namespace, manifest)["metadata"]["uid"]
        self.apply(lambda w: w.add_reminder(name=name, uid=uid, task=task, fire_at=fire_at))

    @rule(which=st.integers(0, 20))
    def remove_reminder(self, which: int) -> None:
        found = self._pick(self._live_reminders(), which, "remove_reminder")
        if found is None:
            return
        name = found.name
        note(f"delete the Reminder {name}")
        self.kube.delete("reminders", self.namespace, name)
        self.apply(lambda w: w.remove_reminder(name))

    @rule(step=st.sampled_from(CLOCK_STEPS))
    def advance_clock(self, step: timedelta) -> None:
        if self._halted():
            return
        self._acted("advance_clock")
        self._move_clock(self.world.now + step)

    @rule()
    def advance_across_dst(self) -> None:
        if self._halted():
            return
        change = next_berlin_change(self.world.now)
        if change - self.world.now > timedelta(days=8):  # crossed already: not a jump of months
            COUNTS.idle += 1
            note(f"(advance_across_dst: the next change is on {change.date()})")
            return
        self._acted("advance_across_dst")
        self._move_clock(change + timedelta(minutes=30))

    def _move_clock(self, to: datetime) -> None:
        offsets = {instant.astimezone(BERLIN).utcoffset() for instant in (self.world.now, to)}
        note(f"move the clock to {to.isoformat()}" + (" (across a DST change)" if len(offsets) > 1 else ""))
        self.stack.clock.set(to)
        scheduler_pass(self.stack, to)
        self.apply(lambda w: w.move_clock(to))

    def two_at_once(
        self, pair: Pair, series: int, shape: Shape, anchor: Anchor, when: ReminderWhen, lag: float
    ) -> None:
        """Two actions on one series fired together; the outcomes each allowed order gives."""
        target = self._pick(self._with_open_current(), series, f"at_once[{pair}]")
        if target is None:
            return
        COUNTS.at_once += 1
        name, task = target.name, target.current
        assert task is not None
        ns = self.namespace
        schedule = schedule_for(shape, self.world.now)
        title = f"Title {self._next('t')}"
        suspend = not target.suspend

        def complete(kube: KubeClient) -> None:
            self._complete(kube, task)

        def skip(kube: KubeClient) -> None:
            kube.delete("tasks", ns, task)

        def edit_schedule(kube: KubeClient) -> None:
            kube.patch("recurringtasks", ns, name, self._schedule_patch(schedule, anchor))

        def delete_series(kube: KubeClient) -> None:
            kube.delete("recurringtasks", ns, name)

        def model_edit(w: World) -> None:
            w.edit(name, schedule=schedule, anchor=anchor)

        orders: dict[str, list[Callable[[World], None]]]
        actions: tuple[Callable[[KubeClient], None], Callable[[KubeClient], None]]
        if pair == "complete+edit-schedule":
            note(f"at once: complete {task} and edit the schedule of {name}: {schedule}, anchor {anchor}")
            actions = (complete, edit_schedule)
            # docs/RECURRENCE.md, "Changes that meet" (F22): the outcome of one order or the other.
            orders = {
                "edit, then complete": [model_edit, lambda w: w.complete(task)],
                "complete, then edit": [lambda w: w.complete(task), model_edit],
            }
        elif pair == "skip+edit-schedule":
            note(
                f"at once: delete {task} (skip) and edit the schedule of {name}: {schedule}, anchor {anchor}"
            )
            actions = (skip, edit_schedule)
            # A skip moves on as a completion does (F24): either order, as above.
            orders = {
                "edit, then skip": [model_edit, lambda w: w.delete_occurrence(task)],
                "skip, then edit": [lambda w: w.delete_occurrence(task), model_edit],
            }
        elif pair in ("complete+delete-series", "skip+delete-series", "edit-schedule+delete-series"):
            first = {"complete": complete, "skip": skip, "edit-schedule": edit_schedule}[pair.split("+")[0]]
            note(f"at once: {pair.split('+')[0]} ({task}) and delete the series {name}")
            actions = (first, delete_series)

            before = set(target.names)

            def other(w: World) -> None:
                if pair.startswith("complete"):
                    w.complete(task)
                    w.occurrences[task].uncertain = True
                elif pair.startswith("skip"):
                    w.delete_occurrence(task)
                    w.occurrences[task].uncertain = True  # the series may be going when it is handled
                else:
                    model_edit(w)
                for made in set(w.series[name].names) - before:
                    w.occurrences[made].maybe = True  # its deletion may have come first

            # Whatever the other action did first, nothing of the series may survive its deletion (F23).
            orders = {"deleted": [other, lambda w: w.delete_series(name)]}
        elif pair == "complete+edit-title":
            note(f"at once: complete {task} and edit the template title of {name}: {title!r}")

            def edit_title(kube: KubeClient) -> None:
                kube.patch("recurringtasks", ns, name, {"spec": {"taskTemplate": {"title": title}}})

            actions = (complete, edit_title)
            orders = {
                "complete, then edit": [lambda w: w.complete(task), lambda w: w.edit(name, title=title)],
                "edit, then complete": [lambda w: w.edit(name, title=title), lambda w: w.complete(task)],
            }
        elif pair == "complete+toggle-suspend":
            note(f"at once: complete {task} and {'suspend' if suspend else 'resume'} {name}")

            def toggle(kube: KubeClient) -> None:
                kube.patch("recurringtasks", ns, name, {"spec": {"suspend": suspend}})

            actions = (complete, toggle)
            orders = {
                "complete, then toggle": [
                    lambda w: w.complete(task),
                    lambda w: w.edit(name, suspend=suspend),
                ],
                "toggle, then complete": [
                    lambda w: w.edit(name, suspend=suspend),
                    lambda w: w.complete(task),
                ],
            }
        elif pair == "complete+skip":
            note(f"at once: complete {task} and delete it")
            actions = (complete, skip)
            orders = {
                # Completed, then deleted as history; or skipped, its completion never seen.
                "complete, then delete": [lambda w: w.complete(task), lambda w: w.delete_occurrence(task)],
                "skip": [lambda w: w.delete_occurrence(task)],
            }
        else:  # complete+add-reminder
            reminder = self._next("r")
            manifest, fire_at = self._reminder_manifest(reminder, task, when)
            note(f"at once: complete {task} and add the Reminder {reminder} for it: {manifest['spec']}")
            made: list[str] = []

            def add(kube: KubeClient) -> None:
                made.append(kube.create("reminders", ns, manifest)["metadata"]["uid"])

            self.at_once(complete, add, lag=lag)
            if self.failure is not None:
                return
            [uid] = made

            def add_model(w: World) -> None:
                w.add_reminder(name=reminder, uid=uid, task=task, fire_at=fire_at)

            # Either way it must end Cancelled: its task was completed before it fired.
            self._settle_orders(
                {
                    "add, then complete": [add_model, lambda w: w.complete(task)],
                    "complete, then add": [lambda w: w.complete(task), add_model],
                }
            )
            return
        self.at_once(*actions, lag=lag)
        if self.failure is None:
            self._settle_orders(orders)

    def _settle_orders(self, orders: Mapping[str, list[Callable[[World], None]]]) -> None:
        candidates = {}
        for label, steps in orders.items():
            world = self.world.copy()
            for step in steps:
                step(world)
            candidates[label] = world
        self.settle(candidates)

    # --- the end of an example --------------------------------------------------------------------------

    def teardown(self) -> None:
        if self.failure is not None:
            raise AssertionError(self.failure)
        if not self.world.series:
            return
        world, ns = self.world, self.namespace
        live = {s.name: s.occurrences for s in world.series.values() if not s.deleted}
        recompleted = any(o.completions > 1 for o in world.occurrences.values())
        if not recompleted:
            assert_whole_record(self.stack, ns, occurrences=live)
        else:
            # A task reopened and completed again is completed twice (the shared check takes
            # task.completed as once per task); its count is checked against the model below.
            sources = Sources(
                api=self.stack.api,
                database_url=self.stack.database_url,
                dapr=self.stack.dapr,
                smtp=self.stack.smtp,
            )
            shared = assert_nothing_lost_nothing_twice(
                sources,
                ns,
                occurrences=live,
                once_per_subject=ONCE_PER_SUBJECT - {"task.completed"},
            )
            listed = lifecycle_record.problems_of(lifecycle_record.collect(self.stack, ns, shared))
            assert not listed, f"the record of {ns} is not whole:\n  " + "\n  ".join(listed)
        outbox = self.stack.rows(
            "SELECT id, event_type, subject FROM outbox WHERE subject LIKE %s ORDER BY id", f"{ns}/%"
        )
        found = outbox_order_problems(world, outbox, ns)
        completions = collections.Counter(e["subject"] for e in outbox if e["event_type"] == "task.completed")
        for occurrence in world.occurrences.values():
            recorded = completions[f"{ns}/{occurrence.name}"]
            if not occurrence.uncertain and recorded != occurrence.completions:
                found.append(
                    f"{occurrence.name}: {recorded} task.completed event(s),"
                    f" completed {occurrence.completions} time(s)"
                )
        found += live_list_problems(world, self.stack, ns)
        assert not found, f"{ns}:\n  " + "\n  ".join(found)


def _rule_for(pair: Pair) -> Callable[..., None]:
    """The rule that fires ``pair``: one rule per pair, so that races are drawn as often as the rest."""

    def fire(
        self: SeriesLifecycle, series: int, shape: Shape, anchor: Anchor, when: ReminderWhen, lag: float
    ) -> None:
        self.two_at_once(pair, series, shape, anchor, when, lag)

    fire.__name__ = "at_once_" + pair.replace("+", "_and_").replace("-", "_")
    return rule(
        series=st.integers(0, MAX_SERIES - 1),
        shape=st.sampled_from(SHAPES),
        anchor=st.sampled_from(ANCHORS),
        when=st.sampled_from(REMINDER_WHENS[:3]),
        lag=st.sampled_from(LAGS),
    )(fire)


for _pair in PAIRS:
    _fire = _rule_for(_pair)
    setattr(SeriesLifecycle, _fire.__name__, _fire)


@pytest.fixture(scope="module")
def model_stack(
    postgres_server: postgres.ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack of its own: the model moves its clock by months, which the package's stacks must not see.

    Its relay keeps published outbox rows for a century instead of a week of the clock: the
    record checks read the outbox, and a jump across a DST change half a year away would
    otherwise prune it under them.
    """
    database_url = postgres_server.create_database("faults_lifecycle_model", template="todo_template")
    with contextlib.ExitStack() as running:
        with pytest.MonkeyPatch.context() as patch:  # read once, when the stack starts
            patch.setenv("TODO_OUTBOX_RETENTION_HOURS", str(24 * 365 * 100))
            stack = running.enter_context(
                running_stack(
                    "inline", database_url=database_url, mail_folder=tmp_path_factory.mktemp("model-mail")
                )
            )
        yield stack


MODEL_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # (No "explain" phase: it runs each failing example again many times, a minute or more here.)
    phases=tuple(p for p in Phase if p is not Phase.explain and (SHRINK or p is not Phase.shrink)),
)


@pytest.mark.timeout(TIMEOUT_SECONDS)
def test_recurring_series_behave_as_the_model_says(model_stack: Stack) -> None:
    started = time.monotonic()
    try:

        class OnTheStack(SeriesLifecycle):
            def __init__(self) -> None:
                super().__init__(model_stack)

        run_state_machine_as_test(OnTheStack, settings=MODEL_SETTINGS)
    finally:
        print(f"\n{COUNTS.summary()}; {time.monotonic() - started:.0f} s")  # make soak shows it
