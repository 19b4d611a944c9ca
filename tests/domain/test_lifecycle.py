"""The series state machine (``domain.lifecycle``), with no I/O: every short history, exhaustively.

A small world stands in for the cluster and PostgreSQL: one RecurringTask's
status with a version (the commit precondition), its occurrence Tasks, the
recorded completions, and a clock. ``settle`` plays the reconciler: observe,
decide, carry out (make the pending occurrence, or commit the status) until
the series rests. Every sequence of up to four user actions (complete,
delete the current occurrence, edit the rule, suspend, resume, time passing,
under both anchors) is played, and also every such sequence where a decision
made before the action is carried out after it (what two changes that meet
do). After each action has settled the invariants are checked.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from todo_operator.domain import lifecycle, occurrences, recurrence, timing
from todo_operator.domain.resources import Anchor, RecurringTaskStatus, ReminderSpec, ReminderStatus

CREATED = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
DAILY_NINE = recurrence.ScheduleSpec(
    rrule=None, every="daily", interval=1, start=datetime(2026, 12, 4, 9, 0), time_zone="Europe/Berlin",
    until=None, count=None, exdates=(),
)  # fmt: skip
EVENING = dataclasses.replace(DAILY_NINE, every=None, rrule="FREQ=DAILY;BYHOUR=18;BYMINUTE=0")
SHORT = dataclasses.replace(DAILY_NINE, count=3)
RULES = {name: recurrence.Recurrence.compile(spec) for name, spec in
         {"daily-nine": DAILY_NINE, "evening": EVENING, "three-times": SHORT}.items()}  # fmt: skip


@dataclasses.dataclass
class Task:
    due_at: datetime
    completed_at: datetime | None = None
    deleting: bool = False


@dataclasses.dataclass
class World:
    anchor: Anchor
    rule: str = "daily-nine"
    generation: int = 1
    suspended: bool = False
    status: RecurringTaskStatus = dataclasses.field(default_factory=RecurringTaskStatus)
    version: int = 0
    tasks: dict[str, Task] = dataclasses.field(default_factory=dict)
    now: datetime = CREATED
    made: list[str] = dataclasses.field(default_factory=list)  # every Task ever created, in order
    completions: list[datetime] = dataclasses.field(default_factory=list)
    skips: int = 0

    def observe(self) -> tuple[lifecycle.Series, int]:
        status = self.status
        current = None
        if status.current_task is not None:
            task = self.tasks.get(status.current_task)
            if task is None:
                current = lifecycle.Current(state="absent")
            elif task.completed_at is not None:
                current = lifecycle.Current(
                    state="completed", due_at=task.due_at, completed_at=task.completed_at
                )
            else:
                current = lifecycle.Current(state="deleted" if task.deleting else "open", due_at=task.due_at)
        series = lifecycle.Series(
            name="review", generation=self.generation, created_at=CREATED, anchor=self.anchor,
            suspended=self.suspended, deleting=False, status=status, current=current,
            pending_exists=status.pending is not None and status.pending.task in self.tasks,
        )  # fmt: skip
        return series, self.version

    def carry_out(self, plan: lifecycle.Plan, *, version: int) -> bool:
        """Carry out one step; False when its commit is refused (the version moved on)."""
        if plan.make is not None:
            if plan.make.task not in self.tasks:
                self.tasks[plan.make.task] = Task(due_at=plan.make.due_at)
                self.made.append(plan.make.task)
            return True
        if version != self.version:
            return False
        observed = plan.status.model_copy(update={"observed_generation": self.generation})
        if observed != self.status:
            self.status, self.version = observed, self.version + 1
        return True

    def step(self) -> lifecycle.Plan:
        series, version = self.observe()
        plan = lifecycle.decide(series, schedule=RULES[self.rule], now=self.now)
        assert self.carry_out(plan, version=version)
        return plan

    def settle(self) -> None:
        for _ in range(10):
            before = (self.status, len(self.tasks))
            self.step()
            if (self.status, len(self.tasks)) == before:
                return
        raise AssertionError(f"the series does not rest: {self.status}")

    # -- what users do ------------------------------------------------------------------------

    def current(self) -> Task | None:
        return self.tasks.get(self.status.current_task or "")

    def complete(self) -> None:
        task = self.current()
        if task is not None and task.completed_at is None and not task.deleting:
            task.completed_at = self.now
            self.completions.append(self.now)

    def skip(self) -> None:
        task = self.current()
        if task is not None and task.completed_at is None and not task.deleting:
            task.deleting = True  # the finalizer holds it while its handler advances the series
            self.skips += 1

    def edit(self) -> None:
        self.rule, self.generation = (
            ("evening" if self.rule == "daily-nine" else "daily-nine"),
            self.generation + 1,
        )
        self.version += 1

    def suspend(self) -> None:
        self.suspended, self.generation, self.version = True, self.generation + 1, self.version + 1

    def resume(self) -> None:
        self.suspended, self.generation, self.version = False, self.generation + 1, self.version + 1

    def wait(self) -> None:
        self.now += timedelta(days=3)

    def remove_deleting(self) -> None:
        """The finalizer done: a Task being deleted goes once the series has moved on from it."""
        for name, task in list(self.tasks.items()):
            if task.deleting and name != self.status.current_task:
                del self.tasks[name]


ACTIONS = ("complete", "skip", "edit", "suspend", "resume", "wait")


def check(world: World) -> None:
    status = world.status
    assert status.pending is None, "a settled series has nothing pending"
    open_tasks = [n for n, t in world.tasks.items() if t.completed_at is None and not t.deleting]
    if status.phase == "Active":
        current = world.current()
        assert current is not None, f"the current occurrence {status.current_task} does not exist"
        assert current.completed_at is None, "the current occurrence is completed"
        assert not current.deleting, "the current occurrence is being deleted"
        assert open_tasks == [status.current_task], f"open occurrences {open_tasks}"
        assert status.next_due_at == current.due_at
    else:
        assert len(open_tasks) <= 1
    # Counted what was made, once each; due times only go forward.
    assert status.occurrences == len(world.made) == len(set(world.made))
    dues = [occurrences_due(world, name) for name in world.made]
    assert dues == sorted(dues), dues
    assert len(set(dues)) == len(dues), dues
    # lastCompletedAt is the last completion that happened, never an instant nobody completed.
    assert status.last_completed_at == (world.completions[-1] if world.completions else None)
    # Each completion or skip yielded at most one next occurrence.
    assert len(world.made) <= 1 + len(world.completions) + world.skips


def occurrences_due(world: World, name: str) -> datetime:
    task = world.tasks.get(name)
    if task is not None:
        return task.due_at
    return datetime.strptime(name.rsplit("-", 1)[1], "%Y%m%dt%H%M").replace(tzinfo=UTC)


def play(anchor: Anchor, actions: tuple[str, ...], *, stale_at: int | None = None) -> World:
    """Play ``actions``; with ``stale_at``, a decision made before that action is carried out after it."""
    world = World(anchor=anchor)
    world.settle()
    check(world)
    for index, action in enumerate(actions):
        stale = None
        if index == stale_at:
            series, version = world.observe()
            stale = (lifecycle.decide(series, schedule=RULES[world.rule], now=world.now), version)
        getattr(world, action)()
        if stale is not None:
            plan, version = stale
            # A make of a committed pending occurrence is always right; a commit only over its version.
            world.carry_out(plan, version=version)
        world.settle()
        world.remove_deleting()
        world.settle()
        check(world)
    return world


def histories(length: int) -> Iterator[tuple[str, ...]]:
    for n in range(1, length + 1):
        yield from itertools.product(ACTIONS, repeat=n)


@pytest.mark.parametrize("anchor", ["schedule", "completion"])
def test_every_history_of_up_to_four_actions_keeps_the_invariants(anchor: Anchor) -> None:
    played = 0
    for actions in histories(4):
        play(anchor, actions)
        played += 1
    assert played == sum(len(ACTIONS) ** n for n in range(1, 5))


@pytest.mark.parametrize("anchor", ["schedule", "completion"])
def test_a_decision_carried_out_after_a_change_it_did_not_see_changes_nothing_wrong(anchor: Anchor) -> None:
    for actions in histories(3):
        for stale_at in range(len(actions)):
            play(anchor, actions, stale_at=stale_at)


def test_a_completion_advances_from_the_recorded_instant_not_the_clock() -> None:
    world = play("completion", ())
    world.now += timedelta(days=2)
    world.complete()
    world.now += timedelta(days=5)  # the reconcile runs late: the next slot does not move
    world.settle()
    assert world.status.last_completed_at == CREATED + timedelta(days=2)
    assert world.status.next_due_at == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)  # 09:00 Berlin, next day


def test_deleting_the_current_occurrence_skips_it_and_records_no_completion() -> None:
    world = play("schedule", ("skip",))
    assert world.status.last_completed_at is None
    assert world.status.occurrences == 2
    assert world.status.next_due_at == datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def test_an_edit_applies_from_the_next_decision() -> None:
    world = play("schedule", ("edit",))
    assert world.status.next_due_at == datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # the open one keeps its time
    world.complete()
    world.settle()
    assert world.status.next_due_at == datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # 18:00 Berlin


def test_the_next_occurrence_is_committed_as_pending_before_it_is_made() -> None:
    world = play("schedule", ())
    world.complete()
    plan = world.step()
    assert plan.outcome == "advanced"
    assert world.status.pending is not None
    assert world.status.pending.task not in world.tasks
    assert world.status.current_task in world.tasks  # the status names only what exists
    assert world.step().outcome == "make"
    assert world.step().outcome == "promoted"
    assert world.status.current_task == world.made[-1]


def test_a_series_ends_after_its_count_and_an_ended_series_rests() -> None:
    world = World(anchor="schedule", rule="three-times")
    world.settle()
    for _ in range(3):
        world.complete()
        world.settle()
    assert (world.status.phase, world.status.occurrences, world.status.next_due_at) == ("Ended", 3, None)
    assert world.step().outcome == "unchanged"


def test_a_deleted_series_decides_nothing() -> None:
    world = play("schedule", ("complete",))
    series, _ = world.observe()
    plan = lifecycle.decide(
        dataclasses.replace(series, deleting=True), schedule=RULES["daily-nine"], now=world.now
    )
    assert (plan.outcome, plan.make, plan.status) == ("gone", None, world.status)


def test_a_suspended_series_still_makes_what_it_committed_and_nothing_after() -> None:
    world = play("schedule", ())
    world.complete()
    world.step()  # the next occurrence committed as pending
    world.suspend()
    world.settle()
    assert world.status.pending is None
    assert world.status.occurrences == 2
    world.complete()
    world.settle()
    assert world.status.phase == "Suspended"
    assert world.status.occurrences == 2


def test_occurrence_names_follow_the_due_time() -> None:
    world = play("schedule", ())
    assert world.made == [occurrences.occurrence_name("review", datetime(2026, 12, 4, 8, 0, tzinfo=UTC))]


# -- a reminder ------------------------------------------------------------------------------------

POLICY = timing.CatchUpPolicy()
DUE = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
BEFORE_HOUR = ReminderSpec.model_validate({"taskRef": {"name": "call-bob"}, "before": "1h"})
AT_NOON = ReminderSpec.model_validate({"taskRef": {"name": "call-bob"}, "at": "2026-12-09T12:00:00Z"})
TASKS = {
    "missing": lifecycle.ReminderTask(state="missing"),
    "invalid": lifecycle.ReminderTask(state="invalid", problem="spec.title: too long"),
    "deleting": lifecycle.ReminderTask(state="deleting", due_at=DUE),
    "completed": lifecycle.ReminderTask(state="completed", due_at=DUE),
    "open": lifecycle.ReminderTask(state="open", due_at=DUE),
    "open, no due time": lifecycle.ReminderTask(state="open"),
}
EXPECTED = {  # (action, reason) for "before 1h" and "at noon"
    "missing": (("fail", "TaskNotFound"), ("fail", "TaskNotFound")),
    "invalid": (("wait", "InvalidTask"), ("wait", "InvalidTask")),
    "deleting": (("cancel", "TaskDeleted"), ("cancel", "TaskDeleted")),
    "completed": (("cancel", "TaskCompleted"), ("cancel", "TaskCompleted")),
    "open": (("schedule", ""), ("schedule", "")),
    "open, no due time": (("fail", "NoDueTime"), ("schedule", "")),
}


@pytest.mark.parametrize("task", TASKS)
def test_a_reminder_follows_its_task(task: str) -> None:
    for spec, expected in zip((BEFORE_HOUR, AT_NOON), EXPECTED[task], strict=True):
        step = lifecycle.decide_reminder(spec, task=TASKS[task], now=CREATED, policy=POLICY)
        assert (step.action, step.reason) == expected
        if step.action == "schedule":
            assert step.fire_at == (DUE - timedelta(hours=1) if spec is BEFORE_HOUR else AT_NOON.at)
            assert step.timing == "wait"


def test_a_reminder_looked_at_late_is_sent_late_or_missed_by_the_catch_up_policy() -> None:
    fire = DUE - timedelta(hours=1)
    timings = [
        lifecycle.decide_reminder(BEFORE_HOUR, task=TASKS["open"], now=fire + late, policy=POLICY).timing
        for late in (timedelta(minutes=-2), timedelta(0), timedelta(hours=1), timedelta(days=2))
    ]
    assert timings == ["wait", "send", "send-late", "missed"]


@pytest.mark.parametrize(
    ("stored", "timing", "cronjob", "outcome"),
    [
        ("Deleted", "send", True, "gone"),
        ("Sent", "missed", True, "terminal"),
        ("Failed", "send", False, "terminal"),
        ("Cancelled", "send", True, "cancelled"),
        ("Scheduled", "missed", True, "missed"),
        ("Pending", "missed", False, "scheduled"),  # the inline dispatcher applies the policy itself
        ("Scheduled", "wait", True, "scheduled"),
    ],
)
def test_what_the_recorded_row_says_comes_first(
    stored: str, timing: str, cronjob: bool, outcome: str
) -> None:
    step = lifecycle.ReminderStep(action="schedule", fire_at=DUE, timing=timing)  # type: ignore[arg-type]
    assert lifecycle.after_recording(step, stored_phase=stored, triggered_outside=cronjob) == outcome


@pytest.mark.parametrize(
    ("phase", "generation", "row", "settled"),
    [
        ("Sent", 1, "Sent", True),
        ("Cancelled", 1, None, True),
        ("Failed", 1, "Pending", False),  # an admin retried its dead letter
        ("Cancelled", 2, "Cancelled", False),  # edited since: live again
        ("Scheduled", 1, "Scheduled", False),
    ],
)
def test_an_ended_reminder_rests_until_it_is_edited_or_retried(
    phase: str, generation: int, row: str | None, settled: bool
) -> None:
    status = ReminderStatus.model_validate({"phase": phase, "observedGeneration": 1})
    assert lifecycle.reminder_settled(status, generation=generation, row_phase=row) is settled


def test_an_ended_series_stays_ended_through_suspend_and_resume() -> None:
    """Found by make soak: ended by a skip, then suspended and resumed, a series made a new
    occurrence due before the one it skipped (the last due time was no longer known)."""
    world = World(anchor="schedule", rule="three-times")
    world.settle()
    for action in ("complete", "complete", "skip"):
        getattr(world, action)()
        world.settle()
        world.remove_deleting()
        world.settle()
    assert (world.status.phase, world.status.occurrences) == ("Ended", 3)
    made = list(world.made)
    for action in ("suspend", "resume"):
        getattr(world, action)()
        world.settle()
        assert world.status.phase == "Ended"
    assert world.made == made
