"""The reconcilers over the shared fakes (tests/fakes.py): no PostgreSQL, no emulator, no Kopf.

What the integration and fault tests show end to end, here step by step and
in milliseconds: what a Task's reconcile records, how a series commits its
next occurrence before it makes it (lifecycle rule 1), and what a commit
overtaken by an edit does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FakeClaims, FakeKube, FakeRecords, RecordingEvents
from todo_operator.clock import ManualClock
from todo_operator.domain import crds, resources
from todo_operator.kube import Body
from todo_operator.operator import reconciling
from todo_operator.schedule_engine import ScheduleEngine
from todo_operator.store.claims import LiveRow, OccurrenceRow

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
NAMESPACE = "default"


class Operator:
    """The two reconcilers as main.py wires them, over the fakes."""

    def __init__(self) -> None:
        self.kube, self.records, self.posted = FakeKube(), FakeRecords(), RecordingEvents()
        self.claims = FakeClaims()
        self.clock = ManualClock(NOW)
        self.engine = ScheduleEngine()
        self.recurring = reconciling.RecurringTaskReconciler(
            kube=self.kube,
            records=self.records,
            claims=self.claims,
            clock=self.clock,
            cluster_events=self.posted,
            engine=self.engine,
        )
        self.tasks = reconciling.TaskReconciler(
            kube=self.kube,
            records=self.records,
            claims=self.claims,
            clock=self.clock,
            cluster_events=self.posted,
            recurring=self.recurring,
        )

    def add(self, kind: crds.Kind, name: str, spec: dict[str, Any], *, uid: str) -> Body:
        """An object as a user's create leaves it in the API server, before any reconcile."""
        body = {
            "apiVersion": resources.API_VERSION,
            "kind": kind.kind,
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": uid,
                "generation": 1,
                "resourceVersion": "1000",
                "creationTimestamp": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "spec": spec,
        }
        self.kube.put(kind, body)
        return body

    def get(self, kind: crds.Kind, name: str) -> Body:
        found = asyncio.run(self.kube.get(kind, namespace=NAMESPACE, name=name))
        assert found is not None, f"{kind.kind} {name} does not exist"
        return found


@pytest.fixture
def operator() -> Operator:
    return Operator()


def _ready(body: Body) -> dict[str, Any]:
    return next(c for c in body["status"]["conditions"] if c["type"] == "Ready")


def daily(**spec: Any) -> dict[str, Any]:
    return {
        "schedule": {"every": "daily", "start": "2026-12-07T09:00:00", "timeZone": "UTC"},
        "taskTemplate": {"title": "Water the plants", "owner": "alice@example.com"},
        **spec,
    }


def test_a_task_is_recorded_once_created_and_once_completed(operator: Operator) -> None:
    task = operator.add(crds.TASK, "rent", {"title": "Pay rent", "owner": "alice@example.com"}, uid="t-1")
    asyncio.run(operator.tasks.reconcile(task))
    assert operator.records.events() == ["task.created"]
    assert _ready(operator.get(crds.TASK, "rent"))["status"] == "True"

    completed = operator.kube.edit(crds.TASK, namespace=NAMESPACE, name="rent", spec={"completed": True})
    asyncio.run(operator.tasks.reconcile(completed))
    assert operator.records.events() == ["task.created", "task.updated", "task.completed"]
    assert operator.get(crds.TASK, "rent")["status"]["phase"] == "Completed"
    assert ("Normal", "Completed") in [(kind, reason) for kind, reason, _ in operator.posted.posted]

    again = operator.get(crds.TASK, "rent")  # a reconcile run again (a restart): nothing new is recorded
    asyncio.run(operator.tasks.reconcile(again))
    assert operator.records.events() == ["task.created", "task.updated", "task.completed"]


def test_a_series_commits_its_next_occurrence_before_it_makes_it(operator: Operator) -> None:
    series = operator.add(crds.RECURRING_TASK, "plants", daily(), uid="s-1")
    asyncio.run(operator.recurring.reconcile(series))

    # First a status naming the pending occurrence, then the Task, then the promotion.
    (kind, name, committed), *_ = operator.kube.statuses
    assert (kind, name) == ("RecurringTask", "plants")
    assert committed["pending"] == {
        "task": "plants-20261207t0900",
        "index": 1,
        "dueAt": "2026-12-07T09:00:00Z",
    }
    assert [body["metadata"]["name"] for body in operator.kube.created] == ["plants-20261207t0900"]
    status = operator.get(crds.RECURRING_TASK, "plants")["status"]
    assert status["currentTask"] == "plants-20261207t0900"
    assert "pending" not in status
    assert (status["occurrences"], status["phase"]) == (1, "Active")
    assert operator.records.events() == ["recurringtask.created"]  # recorded with the promotion, once


def test_completing_the_current_occurrence_makes_the_next_one(operator: Operator) -> None:
    series = operator.add(crds.RECURRING_TASK, "plants", daily(), uid="s-1")
    asyncio.run(operator.recurring.reconcile(series))
    first = operator.get(crds.TASK, "plants-20261207t0900")
    asyncio.run(operator.tasks.reconcile(first))

    operator.clock.set(datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    done = operator.kube.edit(
        crds.TASK, namespace=NAMESPACE, name=first["metadata"]["name"], spec={"completed": True}
    )
    asyncio.run(operator.tasks.reconcile(done))

    status = operator.get(crds.RECURRING_TASK, "plants")["status"]
    assert (status["currentTask"], status["occurrences"]) == ("plants-20261208t0900", 2)
    assert status["lastCompletedAt"] == "2026-12-07T09:30:00Z"
    assert [body["metadata"]["name"] for body in operator.kube.created] == [
        "plants-20261207t0900",
        "plants-20261208t0900",
    ]


def test_a_commit_overtaken_by_an_edit_is_decided_again_from_the_edit(operator: Operator) -> None:
    """The user's edit lands between the read and the commit: the old rule's occurrence is never made."""
    series = operator.add(crds.RECURRING_TASK, "plants", daily(), uid="s-1")
    patch_status = operator.kube.patch_status
    edited = False

    async def edited_meanwhile(*args: Any, **kwargs: Any) -> Body:
        nonlocal edited
        if not edited:
            edited = True
            operator.kube.edit(
                crds.RECURRING_TASK,
                namespace=NAMESPACE,
                name="plants",
                spec={"schedule": {"every": "daily", "start": "2026-12-09T18:00:00", "timeZone": "UTC"}},
            )
        return await patch_status(*args, **kwargs)

    operator.kube.patch_status = edited_meanwhile  # type: ignore[method-assign]
    asyncio.run(operator.recurring.reconcile(series))

    assert [body["metadata"]["name"] for body in operator.kube.created] == ["plants-20261209t1800"]
    status = operator.get(crds.RECURRING_TASK, "plants")["status"]
    assert (status["currentTask"], status["observedGeneration"]) == ("plants-20261209t1800", 2)


def test_an_invalid_schedule_is_refused_on_the_object_and_nothing_is_made(operator: Operator) -> None:
    spec = daily(schedule={"rrule": "FREQ=DAILY;BYDAY=XX", "start": "2026-12-07T09:00:00", "timeZone": "UTC"})
    series = operator.add(crds.RECURRING_TASK, "plants", spec, uid="s-1")
    with pytest.raises(reconciling.InvalidSpec):
        asyncio.run(operator.recurring.reconcile(series))
    ready = _ready(operator.get(crds.RECURRING_TASK, "plants"))
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSchedule")
    assert ready["message"].startswith("spec.schedule: ")
    assert operator.kube.created == []
    assert operator.records.saved == []
    assert [(kind, reason) for kind, reason, _ in operator.posted.posted] == [("Warning", "InvalidSchedule")]


# --- a restored record (operator/claims.py) -------------------------------------------------------

RENT = {"title": "Pay rent", "owner": "alice@example.com", "completed": True}


def _restored(
    operator: Operator, table: str, name: str, *, spec: dict[str, Any], status: dict[str, Any]
) -> None:
    """A live row of ``name`` recorded for an object that is gone (uid ``old``), as a restore leaves it."""
    operator.claims.rows[table, NAMESPACE, name] = LiveRow(uid="old", generation=4, spec=spec, status=status)


def test_a_reapplied_task_takes_up_its_record_and_tells_nothing_twice(operator: Operator) -> None:
    _restored(operator, "tasks", "rent", spec=RENT, status={"phase": "Completed", "observedGeneration": 4})
    task = operator.add(crds.TASK, "rent", RENT, uid="t-new")
    asyncio.run(operator.tasks.reconcile(task))

    assert operator.claims.moved == [("tasks", "old", "t-new", 1)]  # at the object's generation
    assert operator.records.events() == []  # created and completed were told before the backup
    assert operator.get(crds.TASK, "rent")["status"]["phase"] == "Completed"
    assert ("Normal", "RecordTakenUp") in [(kind, reason) for kind, reason, _ in operator.posted.posted]
    assert ("Normal", "Completed") not in [(kind, reason) for kind, reason, _ in operator.posted.posted]


def test_a_task_reapplied_with_another_spec_is_told_as_updated(operator: Operator) -> None:
    _restored(operator, "tasks", "rent", spec={**RENT, "completed": False}, status={"phase": "Open"})
    task = operator.add(crds.TASK, "rent", RENT, uid="t-new")
    asyncio.run(operator.tasks.reconcile(task))

    assert operator.claims.moved == [("tasks", "old", "t-new", 0)]
    assert operator.records.events() == ["task.updated", "task.completed"]


def test_a_late_handler_of_a_replaced_object_takes_nothing_up(operator: Operator) -> None:
    """The name is another object's in the cluster now: the row stays where it is, nothing is written."""
    _restored(operator, "tasks", "rent", spec=RENT, status={"phase": "Completed"})
    operator.add(crds.TASK, "rent", RENT, uid="t-newer")
    gone = operator.get(crds.TASK, "rent")
    gone["metadata"]["uid"] = "t-gone"
    asyncio.run(operator.tasks.reconcile(gone))

    assert operator.claims.moved == []
    assert operator.records.saved == []
    assert operator.kube.statuses == []


def test_a_reapplied_series_makes_its_live_occurrences_again_as_recorded(operator: Operator) -> None:
    first = {"title": "Water the plants", "owner": "alice@example.com", "dueAt": "2026-12-07T09:00:00Z"}
    second = {**first, "dueAt": "2026-12-08T09:00:00Z"}
    status = {
        "phase": "Active",
        "occurrences": 2,
        "currentTask": "plants-20261208t0900",
        "nextDueAt": "2026-12-08T09:00:00Z",
        "rule": "FREQ=DAILY",
    }
    _restored(operator, "recurring_tasks", "plants", spec=daily(), status=status)
    operator.claims.occurrences["old"] = [
        OccurrenceRow(name="plants-20261207t0900", index=1, spec={**first, "completed": True}),
        OccurrenceRow(name="plants-20261208t0900", index=2, spec=second),
    ]
    series = operator.add(crds.RECURRING_TASK, "plants", daily(), uid="s-new")
    operator.clock.set(datetime(2026, 12, 8, 8, 0, tzinfo=UTC))
    asyncio.run(operator.recurring.reconcile(series))

    made = {body["metadata"]["name"]: body for body in operator.kube.created}
    assert sorted(made) == ["plants-20261207t0900", "plants-20261208t0900"]  # nothing new made
    assert made["plants-20261207t0900"]["spec"]["completed"] is True
    assert made["plants-20261208t0900"]["metadata"]["ownerReferences"][0]["uid"] == "s-new"
    assert made["plants-20261208t0900"]["metadata"]["labels"]["todo.dev/occurrence"] == "2"
    restored = operator.get(crds.RECURRING_TASK, "plants")["status"]
    assert (restored["occurrences"], restored["currentTask"]) == (2, "plants-20261208t0900")
    assert operator.records.events() == []
