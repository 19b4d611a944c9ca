"""The lifecycle of a recurring series and of a reminder: given what is observed, what must happen next.

Pure: no I/O and no clock (``now`` is passed in). ``RecurringTaskReconciler``
observes a series (its spec, generation and status, the current occurrence as
it is in the cluster, its recorded completion), asks :func:`decide`, and
carries the :class:`Plan` out. Every rule of a series is here, so two changes
that meet are two calls of one function on two observations, not a new case
in a reconciler.

The rules (docs/RECURRENCE.md states them for users):

1. **One occurrence at a time, committed before it is made.** A series has
   one *current* occurrence, named in its status. Moving on is two commits,
   each a status written over the version of the RecurringTask it was decided
   from (a resourceVersion precondition): first the next occurrence is
   committed as ``pending`` (its name, index and due time), then, once its Task
   exists, it becomes the current one. A decision made from a version that
   has since changed (an edit, a deletion, another replica's step) never
   commits, so it never creates anything: it is made again from what is
   there now. And the status never names a current Task that is not there.
2. **A pending occurrence is made.** Whoever sees it (a retry after a crash,
   the other replica) creates it under the recorded name, index and due time;
   its name is deterministic, so two makers create one.
3. **A completion advances once,** from the instant first recorded in
   PostgreSQL, never the clock: a retry computes the same next slot.
4. **Deleting the current occurrence skips it** (F24): the series moves on
   from its due time, or from ``now`` if that has passed; nothing is recorded
   as completed. A completed occurrence that is being deleted is a completion.
5. **An edit applies from the next decision.** The open occurrence keeps the
   due time it was made with; the occurrence after it follows the new rule.
6. **Suspended series make nothing; ended series stay ended** until an edit
   (a later ``until``, a larger ``count``) gives the rule more slots after
   their last occurrence (completed: from its completion; deleted: not known,
   so it stays ended). Suspending or resuming an ended series changes nothing.
7. **A deleted series decides nothing** (F23): nothing of it is created or
   advanced once its deletion is seen.
8. **Due times only go forward.** Each occurrence is due after the one
   before it, whatever the anchor: completed early under the completion
   anchor, the next is measured from the due time of the one done.

Everything is keyed by the series' uid and generation (the reconciler checks
that the current occurrence is controlled by this uid), never by a name alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from todo_operator.domain import occurrences, recurrence, timing
from todo_operator.domain.events import Event, Seen, lifecycle_events
from todo_operator.domain.resources import (
    Anchor,
    PendingOccurrence,
    RecurringTaskSpec,
    RecurringTaskStatus,
    ReminderSpec,
    ReminderStatus,
)

CurrentState = Literal["absent", "open", "completed", "deleted"]
Outcome = Literal[
    "unchanged",  # nothing to do: the current occurrence is open (or the series ended or suspended)
    "make",  # create the pending occurrence's Task, then decide again
    "started",  # the first occurrence committed as pending
    "advanced",  # the current one was completed: the next committed as pending
    "skipped",  # the current one was deleted: the next committed as pending
    "promoted",  # the pending occurrence exists: it is now the current one
    "ended",  # no further occurrences
    "suspended",
    "gone",  # the series is being deleted: nothing more is decided
]


@dataclass(frozen=True, kw_only=True)
class Current:
    """The current occurrence as observed.

    ``absent``: no Task of that name; ``open``; ``completed`` with the recorded
    ``completed_at``; ``deleted``: being deleted while not completed (a skip).
    """

    state: CurrentState
    due_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Series:
    """What is observed of a RecurringTask."""

    name: str
    generation: int
    created_at: datetime
    anchor: Anchor
    suspended: bool
    deleting: bool
    status: RecurringTaskStatus
    current: Current | None  # None when the status names no current occurrence
    pending_exists: bool = False  # whether the pending occurrence's Task exists


@dataclass(frozen=True, kw_only=True)
class Plan:
    status: RecurringTaskStatus  # to commit (conditions and observedGeneration are the reconciler's)
    outcome: Outcome

    @property
    def make(self) -> PendingOccurrence | None:
        """The occurrence to create before anything is committed."""
        return self.status.pending if self.outcome == "make" else None


def decide(series: Series, *, schedule: recurrence.Recurrence, now: datetime) -> Plan:
    """The next step of ``series`` under ``schedule`` (rules 1–7 above).

    A step either commits a status or makes the pending occurrence; the reconciler
    carries it out and decides again until the outcome is one that rests.
    """
    status = series.status
    if series.deleting:
        return Plan(status=status, outcome="gone")
    if status.pending is not None:
        return _pending_step(series, status.pending)
    if status.phase == "Ended" and (status.observed_generation == series.generation or series.suspended):
        return Plan(status=status, outcome="unchanged")  # suspending an ended series changes nothing
    current = series.current
    if series.suspended:
        # Nothing new, but a completion is history all the same (the advance waits for the resume).
        suspended = status.model_copy(update={"phase": "Suspended"})
        if current is not None and current.state == "completed":
            suspended = suspended.model_copy(update={"last_completed_at": current.completed_at})
        return Plan(status=suspended, outcome="suspended")
    active = status.model_copy(update={"phase": "Active"})

    if status.current_task is None or current is None:
        # The creation instant, not "now": a retry computes the same first slot.
        first = occurrences.first_due(schedule, created_at=series.created_at)
        if first is None:
            return Plan(status=_ended(status), outcome="ended")
        return _commit_next(active, series=series, due_at=first, index=1, outcome="started")

    if current.state == "open":
        return Plan(status=active, outcome="unchanged")
    if current.state == "absent":
        if status.next_due_at is None:
            # An ended series whose last occurrence is gone: its due time, which the next one
            # must follow (rule 8), is not known any more. It stays as it is.
            return Plan(status=status, outcome="unchanged")
        # Removed without its deletion being seen (its finalizer taken off by hand): a skip
        # from its due time, as if seen; nothing is recorded as completed.
        current = Current(state="deleted", due_at=status.next_due_at)
    return _move_on(series, active, current, schedule=schedule, now=now)


def _pending_step(series: Series, pending: PendingOccurrence) -> Plan:
    """A committed next occurrence: make it if it does not exist yet, else promote it (rule 1)."""
    if not series.pending_exists:
        return Plan(status=series.status, outcome="make")
    promoted = series.status.model_copy(
        update={
            "current_task": pending.task,
            "next_due_at": pending.due_at,
            "occurrences": pending.index,
            "pending": None,
        }
    )
    return Plan(status=promoted, outcome="promoted")


def _move_on(
    series: Series,
    active: RecurringTaskStatus,
    current: Current,
    *,
    schedule: recurrence.Recurrence,
    now: datetime,
) -> Plan:
    """Past an occurrence that was completed (advanced) or deleted before it was (skipped)."""
    status = series.status
    if current.state == "completed":
        if current.due_at is None or current.completed_at is None:
            raise ValueError("a completed occurrence is observed with its due time and completion instant")
        previous_due, moved_on_at = current.due_at, current.completed_at
        last_completed_at: datetime | None = current.completed_at
        outcome: Outcome = "advanced"
    else:  # deleted before it was completed: a skip
        previous_due = status.next_due_at or series.created_at
        moved_on_at = max(previous_due, now)
        last_completed_at = status.last_completed_at
        outcome = "skipped"
    due = _next_due(series, schedule=schedule, previous_due=previous_due, moved_on_at=moved_on_at)
    finished = active.model_copy(update={"last_completed_at": last_completed_at})
    if due is None:
        return Plan(status=_ended(finished), outcome="ended")
    return _commit_next(finished, series=series, due_at=due, index=status.occurrences + 1, outcome=outcome)


def _next_due(
    series: Series, *, schedule: recurrence.Recurrence, previous_due: datetime, moved_on_at: datetime
) -> datetime | None:
    """When the occurrence after the one due at ``previous_due`` is due; never at or before it (rule 8)."""
    due = recurrence.next_due(
        schedule,
        anchor=series.anchor,
        previous_due=previous_due,
        completed_at=moved_on_at,
        occurrences_so_far=series.status.occurrences,
    )
    if due is not None and due <= previous_due:
        # Completed early under the completion anchor: one interval after the completion can be
        # the very slot just done (due tomorrow, done today, "every day"). Measure from its due
        # time instead.
        due = recurrence.next_due(
            schedule,
            anchor=series.anchor,
            previous_due=previous_due,
            completed_at=previous_due,
            occurrences_so_far=series.status.occurrences,
        )
    return due


def series_events(
    seen: Seen, spec: RecurringTaskSpec, *, new: RecurringTaskStatus, ended: bool
) -> list[Event]:
    """The events a series' row is saved with: created/updated, and ended once it is committed Ended."""
    data = {
        "title": spec.task_template.title,
        "owner": spec.task_template.owner,
        "rule": new.rule,
        "phase": new.phase,
        "currentTask": new.current_task,
        "nextDueAt": new.next_due_at.isoformat() if new.next_due_at else None,
    }
    events = lifecycle_events("recurringtask", seen, data=data)
    if ended:
        events.append(seen.event("recurringtask.ended", key=f"recurringtask.ended:{seen.uid}", data=data))
    return events


def _ended(status: RecurringTaskStatus) -> RecurringTaskStatus:
    return status.model_copy(update={"phase": "Ended", "next_due_at": None})


def _commit_next(
    status: RecurringTaskStatus, *, series: Series, due_at: datetime, index: int, outcome: Outcome
) -> Plan:
    pending = PendingOccurrence(
        task=occurrences.occurrence_name(series.name, due_at), index=index, due_at=due_at
    )
    return Plan(status=status.model_copy(update={"pending": pending}), outcome=outcome)


# -- a reminder ------------------------------------------------------------------------------------
#
# A Reminder follows its Task (found by name in its namespace, recorded by uid): it fires at its
# moment while the Task is open, ends Cancelled once the Task is completed or deleted, ends Failed
# when it can never fire, and waits (not failed) while the Task is refused by the operator. Its
# row in PostgreSQL has the last word on terminal phases: a sent, failed or cancelled row is never
# made pending again by a reconcile that read the Task earlier (``store.reminder_rows``), only by an
# edit of the Reminder (a newer generation).

TaskState = Literal["missing", "invalid", "deleting", "completed", "open"]
ReminderAction = Literal["fail", "wait", "cancel", "schedule"]
Recorded = Literal["gone", "missed", "terminal", "cancelled", "scheduled"]


@dataclass(frozen=True, kw_only=True)
class ReminderTask:
    """The Task a Reminder belongs to, as observed."""

    state: TaskState
    due_at: datetime | None = None
    problem: str = ""  # why the operator refuses it (``invalid``)


@dataclass(frozen=True, kw_only=True)
class ReminderStep:
    action: ReminderAction
    reason: str = ""
    message: str = ""
    fire_at: datetime | None = None
    timing: timing.Decision | None = None


def reminder_settled(status: ReminderStatus, *, generation: int, row_phase: str | None) -> bool:
    """A reminder that ended (at this generation, and in its row) has nothing left to decide.

    A row made pending again (an admin retried its dead letter) is not settled.
    """
    return (
        status.phase in ("Sent", "Failed", "Cancelled")
        and status.observed_generation == generation
        and (row_phase is None or row_phase in ("Sent", "Failed", "Cancelled"))
    )


def decide_reminder(
    spec: ReminderSpec, *, task: ReminderTask, now: datetime, policy: timing.CatchUpPolicy
) -> ReminderStep:
    """What a live (not settled) reminder does now."""
    name = spec.task_ref.name
    if task.state == "missing":
        return ReminderStep(action="fail", reason="TaskNotFound", message=f"task {name!r} not found")
    if task.state == "invalid":
        # Not a failure of this reminder: it fires once the Task is fixed.
        return ReminderStep(
            action="wait", reason="InvalidTask", message=f"task {name!r} is invalid: {task.problem}"
        )
    if task.state in ("completed", "deleting"):
        reason = "TaskCompleted" if task.state == "completed" else "TaskDeleted"
        return ReminderStep(action="cancel", reason=reason)
    try:
        fire = timing.fire_at(spec, due_at=task.due_at)
    except timing.ReminderError as error:
        return ReminderStep(action="fail", reason="NoDueTime", message=str(error))
    return ReminderStep(action="schedule", fire_at=fire, timing=timing.catch_up(fire, now=now, policy=policy))


def after_recording(step: ReminderStep, *, stored_phase: str, triggered_outside: bool) -> Recorded:
    """What a scheduled reminder's row, as PostgreSQL kept it, says to do next.

    ``missed`` (with a trigger outside the operator, a CronJob or a Dapr job, only: inline
    delivery's dispatcher applies the same policy when it claims the row): too late to be worth
    an e-mail, it ends Failed.
    """
    if stored_phase == "Deleted":
        return "gone"
    if stored_phase in ("Sent", "Failed"):
        return "terminal"
    if stored_phase == "Cancelled":
        return "cancelled"  # by another replica that saw the task completed first
    if step.timing == "missed" and triggered_outside:
        return "missed"
    return "scheduled"
