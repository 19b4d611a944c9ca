"""The operator loop end to end: emulator over HTTP, real Kopf, real PostgreSQL.

A RecurringTask opens its first occurrence; completing it opens the next;
status, conditions and observedGeneration are kept; every change lands in
PostgreSQL with its outbox event; a completion counts once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.kubeclient import KubeClient, condition
from todo_devstack.dapr import DaprThread

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture
def db(operator_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(operator_database_url, autocommit=True) as connection:
        yield connection


def tomorrow_at_nine() -> datetime:
    return (datetime.now(tz=UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def recurring_task(name: str, **schedule: Any) -> dict[str, Any]:
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "RecurringTask",
        "metadata": {"name": name},
        "spec": {
            "schedule": {
                "start": tomorrow_at_nine().strftime("%Y-%m-%dT%H:%M:%S"),
                "every": "daily",
                **schedule,
            },
            "taskTemplate": {"title": "Water the plants", "owner": "alice@example.com", "tags": ["home"]},
        },
    }


def wait_current(kube: KubeClient, namespace: str, name: str, *, occurrences: int) -> dict[str, Any]:
    return kube.wait_for_status(
        "recurringtasks",
        namespace,
        name,
        lambda status: status.get("occurrences") == occurrences and condition(status).get("status") == "True",
        what=f"occurrence {occurrences}",
    )


def complete(kube: KubeClient, namespace: str, task: str) -> dict[str, Any]:
    patched = kube.patch("tasks", namespace, task, {"spec": {"completed": True}})
    return kube.wait_for_status(
        "tasks",
        namespace,
        task,
        lambda status: status.get("observedGeneration") == patched["metadata"]["generation"],
        what="the completion observed",
    )


def outbox(db: psycopg.Connection[Any], namespace: str) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT event_type, subject FROM outbox WHERE subject LIKE %s ORDER BY id", (f"{namespace}/%",)
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def test_first_occurrence_is_created_owned_and_named_by_its_due_time(
    kube: KubeClient, namespace: str
) -> None:
    created = kube.create("recurringtasks", namespace, recurring_task("plants"))
    body = wait_current(kube, namespace, "plants", occurrences=1)
    status = body["status"]
    due = tomorrow_at_nine()

    assert status["phase"] == "Active"
    assert status["currentTask"] == f"plants-{due:%Y%m%dt%H%M}"
    assert datetime.fromisoformat(status["nextDueAt"]) == due
    assert status["observedGeneration"] == 1
    assert status["rule"].startswith("FREQ=DAILY")
    assert condition(status)["reason"] == "Scheduled"

    task = kube.get("tasks", namespace, status["currentTask"])
    assert task is not None
    assert task["spec"]["title"] == "Water the plants"
    assert task["spec"]["tags"] == ["home"]
    assert datetime.fromisoformat(task["spec"]["dueAt"]) == due
    (owner,) = task["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "RecurringTask",
        "plants",
        created["metadata"]["uid"],
        True,
    )
    task = kube.wait_for_status(
        "tasks", namespace, status["currentTask"], lambda s: s.get("phase") == "Open", what="phase Open"
    )
    assert task["status"]["recurringTask"] == "plants"
    assert task["status"]["occurrence"] == 1


def test_completing_an_occurrence_creates_the_next(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any]
) -> None:
    kube.create("recurringtasks", namespace, recurring_task("plants"))
    first = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]

    completed = complete(kube, namespace, first)
    second = wait_current(kube, namespace, "plants", occurrences=2)["status"]

    assert completed["status"]["phase"] == "Completed"
    assert completed["status"]["completedAt"]
    assert datetime.fromisoformat(second["nextDueAt"]) == tomorrow_at_nine() + timedelta(days=1)
    assert second["currentTask"] != first
    assert second["lastCompletedAt"]
    assert len(kube.list("tasks", namespace)) == 2
    # The second occurrence's row is written by its own handler, a moment after it exists.
    rows = kube.wait_for(
        "both occurrences recorded",
        lambda: (
            (
                found := db.execute(
                    "SELECT name, completed, completed_at IS NOT NULL, occurrence FROM tasks"
                    " WHERE namespace = %s ORDER BY occurrence",
                    (namespace,),
                ).fetchall()
            )
            and len(found) == 2
            and found
        ),
    )
    assert [(row[1], row[2], row[3]) for row in rows] == [(True, True, 1), (False, False, 2)]
    events = [event for event, _ in outbox(db, namespace)]
    assert events.count("task.completed") == 1
    assert events.count("task.created") == 2
    assert events.count("recurringtask.created") == 1


@pytest.mark.parametrize("anchor", ["schedule", "completion"])
def test_deleting_the_current_occurrence_skips_it_at_once_and_records_no_completion(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any], anchor: str
) -> None:
    """F24: a user deletes the occurrence to skip it. The series moves on by itself, to the next slot,
    and nothing is recorded as done (before: it waited for some other change of the RecurringTask,
    then recorded the skipped occurrence's future due time as ``lastCompletedAt``)."""
    manifest = recurring_task("plants")
    manifest["spec"]["anchor"] = anchor
    kube.create("recurringtasks", namespace, manifest)
    first = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]

    kube.delete("tasks", namespace, first)
    second = wait_current(kube, namespace, "plants", occurrences=2)["status"]

    assert second["currentTask"] != first
    assert datetime.fromisoformat(second["nextDueAt"]) == tomorrow_at_nine() + timedelta(days=1)
    assert second.get("lastCompletedAt") is None
    assert second["phase"] == "Active"
    kube.wait_for("the skipped occurrence gone", lambda: kube.get("tasks", namespace, first) is None)
    assert [task["metadata"]["name"] for task in kube.list("tasks", namespace)] == [second["currentTask"]]
    recorded = db.execute(
        "SELECT last_completed_at, current_task FROM recurring_tasks"
        " WHERE namespace = %s AND name = 'plants'",
        (namespace,),
    ).fetchone()
    assert recorded == (None, second["currentTask"])
    # History says it was skipped, not done, and so do the events and `kubectl describe`.
    row = db.execute(
        "SELECT phase, completed, completed_at, deleted_at IS NOT NULL FROM tasks"
        " WHERE namespace = %s AND name = %s",
        (namespace, first),
    ).fetchone()
    assert row == ("Skipped", False, None, True)
    of_first = [event for event, subject in outbox(db, namespace) if subject == f"{namespace}/{first}"]
    assert of_first == ["task.created", "task.skipped", "task.deleted"]
    skipped = [e for e in kube.events(namespace, "plants") if e["reason"] == "Skipped"]
    assert [e["message"] for e in skipped] == [
        f"occurrence 1 {first} was deleted before it was completed: skipped"
    ]


def test_deleting_a_completed_occurrence_or_a_one_off_task_is_no_skip(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any]
) -> None:
    """Only the current occurrence, not completed, is skipped by its deletion: a completed one
    stays history as Completed, a one-off task is simply deleted (its row out of every list)."""
    kube.create("recurringtasks", namespace, recurring_task("plants"))
    first = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]
    complete(kube, namespace, first)
    wait_current(kube, namespace, "plants", occurrences=2)
    one_off = {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"name": "call-bob"},
        "spec": {"title": "Call Bob", "owner": "alice@example.com"},
    }
    kube.create("tasks", namespace, one_off)
    kube.wait_for_status("tasks", namespace, "call-bob", lambda s: s.get("phase") == "Open", what="Open")

    kube.delete("tasks", namespace, first)
    kube.delete("tasks", namespace, "call-bob")

    def recorded() -> list[tuple[str, str, bool]] | None:
        rows = db.execute(
            "SELECT name, phase, deleted_at IS NOT NULL FROM tasks"
            " WHERE namespace = %s AND name = ANY(%s) ORDER BY name",
            (namespace, [first, "call-bob"]),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows] if all(r[2] for r in rows) else None

    assert kube.wait_for("both deletions recorded", recorded) == [
        ("call-bob", "Open", True),
        (first, "Completed", True),
    ]
    assert [event for event, _ in outbox(db, namespace)].count("task.skipped") == 0
    body = kube.get("recurringtasks", namespace, "plants")
    assert body is not None
    assert body["status"]["occurrences"] == 2


def test_an_occurrence_completed_early_under_the_completion_anchor_is_followed_by_a_later_one(
    kube: KubeClient, namespace: str
) -> None:
    """Due tomorrow at nine, done today, "every day from completion": one day after today is the
    very slot just done. Before, the series named the completed Task as its next occurrence too
    (same due time, same name) and had nothing open; the next is now measured from its due time."""
    manifest = recurring_task("plants")
    manifest["spec"]["anchor"] = "completion"
    kube.create("recurringtasks", namespace, manifest)
    first = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]
    complete(kube, namespace, first)

    second = wait_current(kube, namespace, "plants", occurrences=2)["status"]
    assert second["currentTask"] != first
    assert datetime.fromisoformat(second["nextDueAt"]) == tomorrow_at_nine() + timedelta(days=1)
    current = kube.get("tasks", namespace, second["currentTask"])
    assert current is not None
    assert not current["spec"].get("completed")


def test_a_task_completed_twice_advances_the_schedule_once(kube: KubeClient, namespace: str) -> None:
    kube.create("recurringtasks", namespace, recurring_task("plants"))
    first = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]
    complete(kube, namespace, first)
    wait_current(kube, namespace, "plants", occurrences=2)

    # Reopen and complete the same task again (F18): the schedule does not move.
    kube.patch("tasks", namespace, first, {"spec": {"completed": False}})
    complete(kube, namespace, first)

    body = kube.get("recurringtasks", namespace, "plants")
    assert body is not None
    assert body["status"]["occurrences"] == 2
    assert len(kube.list("tasks", namespace)) == 2


def test_every_change_is_recorded_with_its_event_in_postgres(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any]
) -> None:
    kube.create("recurringtasks", namespace, recurring_task("plants"))
    current = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]
    kube.wait_for(
        "the task recorded", lambda: db.execute("SELECT 1 FROM tasks WHERE name = %s", (current,)).fetchone()
    )

    row = db.execute(
        "SELECT phase, current_task, occurrences, rule, owner FROM recurring_tasks WHERE namespace = %s",
        (namespace,),
    ).fetchone()
    assert row is not None
    assert row[:3] == ("Active", current, 1)
    assert row[3].startswith("FREQ=DAILY")
    assert row[4] == "alice@example.com"
    assert set(outbox(db, namespace)) == {
        ("recurringtask.created", f"{namespace}/plants"),
        ("task.created", f"{namespace}/{current}"),
    }


def test_an_edit_bumps_observed_generation_and_emits_an_update(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any]
) -> None:
    task = kube.create(
        "tasks",
        namespace,
        {"metadata": {"name": "passport"}, "spec": {"title": "Renew passport", "owner": "alice@example.com"}},
    )
    kube.wait_for_status(
        "tasks", namespace, "passport", lambda s: s.get("observedGeneration") == 1, what="recorded"
    )
    patched = kube.patch("tasks", namespace, "passport", {"spec": {"title": "Renew passport and ID card"}})
    assert patched["metadata"]["generation"] == 2
    kube.wait_for_status(
        "tasks", namespace, "passport", lambda s: s.get("observedGeneration") == 2, what="observed"
    )

    title = db.execute("SELECT title FROM tasks WHERE uid = %s", (task["metadata"]["uid"],)).fetchone()
    assert title == ("Renew passport and ID card",)
    assert [event for event, _ in outbox(db, namespace)] == ["task.created", "task.updated"]


def test_a_status_write_does_not_bump_the_generation(kube: KubeClient, namespace: str) -> None:
    kube.create(
        "tasks", namespace, {"metadata": {"name": "t"}, "spec": {"title": "T", "owner": "a@example.com"}}
    )
    body = kube.wait_for_status(
        "tasks", namespace, "t", lambda s: s.get("phase") == "Open", what="phase Open"
    )
    assert body["metadata"]["generation"] == 1


def test_the_schedule_ends_at_its_count(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any]
) -> None:
    kube.create("recurringtasks", namespace, recurring_task("twice", count=2))
    first = wait_current(kube, namespace, "twice", occurrences=1)["status"]["currentTask"]
    complete(kube, namespace, first)
    second = wait_current(kube, namespace, "twice", occurrences=2)["status"]["currentTask"]
    complete(kube, namespace, second)

    body = kube.wait_for_status(
        "recurringtasks", namespace, "twice", lambda s: s.get("phase") == "Ended", what="phase Ended"
    )
    assert condition(body["status"])["reason"] == "Ended"
    assert "nextDueAt" not in body["status"]
    assert len(kube.list("tasks", namespace)) == 2
    kube.wait_for(
        "the end recorded", lambda: ("recurringtask.ended", f"{namespace}/twice") in outbox(db, namespace)
    )
    assert any(event["reason"] == "Ended" for event in kube.events(namespace, "twice"))


def test_history_beyond_the_limit_is_pruned_but_kept_in_postgres(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any]
) -> None:
    manifest = recurring_task("plants")
    manifest["spec"]["historyLimit"] = 1
    kube.create("recurringtasks", namespace, manifest)
    for occurrence in (1, 2, 3):
        current = wait_current(kube, namespace, "plants", occurrences=occurrence)["status"]["currentTask"]
        complete(kube, namespace, current)
    wait_current(kube, namespace, "plants", occurrences=4)

    def objects_left() -> list[int] | None:
        left = sorted(
            t["status"].get("occurrence", 0) for t in kube.list("tasks", namespace) if t.get("status")
        )
        return left if left == [3, 4] else None

    kube.wait_for("the pruning of occurrences 1 and 2", objects_left)
    kube.wait_for(
        "the deletions recorded (PostgreSQL keeps the history)",
        lambda: (
            db.execute(
                "SELECT count(*) FROM tasks WHERE namespace = %s AND deleted_at IS NOT NULL", (namespace,)
            ).fetchone()
            == (2,)
        ),
    )


def test_suspended_schedules_create_nothing_new(kube: KubeClient, namespace: str) -> None:
    kube.create("recurringtasks", namespace, recurring_task("plants"))
    first = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]
    kube.patch("recurringtasks", namespace, "plants", {"spec": {"suspend": True}})
    kube.wait_for_status(
        "recurringtasks", namespace, "plants", lambda s: s.get("phase") == "Suspended", what="phase Suspended"
    )
    complete(kube, namespace, first)
    body = kube.get("recurringtasks", namespace, "plants")
    assert body is not None
    assert body["status"]["occurrences"] == 1

    kube.patch("recurringtasks", namespace, "plants", {"spec": {"suspend": False}})
    wait_current(kube, namespace, "plants", occurrences=2)


def test_deleting_a_recurring_task_deletes_its_occurrences(
    kube: KubeClient, namespace: str, db: psycopg.Connection[Any]
) -> None:
    kube.create("recurringtasks", namespace, recurring_task("plants"))
    wait_current(kube, namespace, "plants", occurrences=1)
    kube.delete("recurringtasks", namespace, "plants")

    kube.wait_for("the RecurringTask gone", lambda: kube.get("recurringtasks", namespace, "plants") is None)
    kube.wait_for("its occurrences gone", lambda: kube.list("tasks", namespace) == [])
    kube.wait_for(
        "both deletions recorded",
        lambda: {event for event, _ in outbox(db, namespace)} >= {"recurringtask.deleted", "task.deleted"},
    )


def test_changes_reach_dapr_as_cloudevents_in_order_per_user(
    kube: KubeClient, namespace: str, dapr: DaprThread, db: psycopg.Connection[Any]
) -> None:
    kube.create("recurringtasks", namespace, recurring_task("plants"))
    first = wait_current(kube, namespace, "plants", occurrences=1)["status"]["currentTask"]
    complete(kube, namespace, first)
    wait_current(kube, namespace, "plants", occurrences=2)
    kube.wait_for(
        "the completion recorded", lambda: ("task.completed", f"{namespace}/{first}") in outbox(db, namespace)
    )

    def published() -> list[dict[str, Any]]:
        return [
            dict(received.event)
            for received in dapr.events("task-events")
            if received.event["subject"].startswith(f"{namespace}/")
        ]

    def in_step() -> list[dict[str, Any]] | None:
        events = published()
        # The relay publishes in the outbox's order (one user here: one partition key).
        return (
            events
            if [(event["type"], event["subject"]) for event in events] == outbox(db, namespace)
            else None
        )

    events = kube.wait_for("the outbox published in its order", in_step)
    assert {event["type"] for event in events} >= {"recurringtask.created", "task.created", "task.completed"}
    assert len({event["id"] for event in events}) == len(events)
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["datacontenttype"] == "application/json"
        assert event["partitionkey"] == "alice@example.com"
