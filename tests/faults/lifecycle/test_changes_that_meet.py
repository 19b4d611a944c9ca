"""F22 and F23: two changes to one series that meet, fired at once from two threads.

No request is held here: each change is an ordinary API call, the second sent
as soon as the first returns, for several series at once so that the
operator's handlers interleave in many ways in one run. Whatever the
interleaving, the outcome must be one that some serial order of the two
changes gives:

* F22, an occurrence completed and the schedule edited: complete-then-edit
  gives the old rule's next slot (an open occurrence keeps the due time it
  was decided with), edit-then-complete the new rule's. Either way exactly
  one open occurrence, which exists and which the status names; the count and
  ``lastCompletedAt`` are the recorded truth, and nothing was made and taken
  back.
* F23, an occurrence completed and the series deleted: nothing of the series
  survives (objects, live rows, the REST list), and its events end with its
  deletion.
"""

from __future__ import annotations

import concurrent.futures
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.faults.lifecycle.record import assert_whole_record
from tests.faults.lifecycle.stack import Stack, recurring_task
from todo_operator.operator.objects import LABEL_RECURRING_TASK_UID

SERIES = 16
# The second change follows the first after 0, 0.1 ... 1.5 s: the Task's handler reaches the
# series some hundred milliseconds after the completion (watch, batching, its own writes), so
# some of the second changes land while it is in flight (at HEAD before the fix, 3 of 16 did).
STAGGER = 0.1
NEW_RULE = "FREQ=DAILY;BYMINUTE=0;BYHOUR=18"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _start(stack: Stack, ns: str) -> tuple[datetime, list[dict[str, Any]]]:
    """SERIES daily series at 09:00 UTC from the day after tomorrow, each at its first occurrence."""
    day = (stack.clock.now() + timedelta(days=2)).date()
    d1 = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    schedule = {"every": "daily", "start": d1.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}
    for i in range(SERIES):
        stack.kube.create("recurringtasks", ns, recurring_task(f"series-{i}", schedule=schedule))
    bodies = [
        stack.wait_status(
            "recurringtasks",
            ns,
            f"series-{i}",
            lambda s: s.get("occurrences") == 1 and s.get("pending") is None,
            "its first occurrence",
        )
        for i in range(SERIES)
    ]
    return d1, bodies


def _at_once(*changes: Any) -> None:
    """Each change as a pair of calls, the second a few milliseconds after the first, all series at once."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(changes)) as pool:
        for future in [pool.submit(change) for change in changes]:
            future.result()


def test_an_occurrence_completed_as_the_schedule_is_edited_gives_a_serial_outcome(
    cronjob_stack: Stack,
) -> None:
    stack = cronjob_stack
    ns = stack.new_namespace("complete-and-edit")
    d1, bodies = _start(stack, ns)
    old_next, new_next = d1 + timedelta(days=1), d1.replace(hour=18)

    def complete_then_edit(body: dict[str, Any], pause: float) -> None:
        name = body["metadata"]["name"]
        stack.kube.patch("tasks", ns, body["status"]["currentTask"], {"spec": {"completed": True}})
        time.sleep(pause)
        stack.kube.patch(
            "recurringtasks", ns, name, {"spec": {"schedule": {"every": None, "rrule": NEW_RULE}}}
        )

    _at_once(*(lambda b=body, i=i: complete_then_edit(b, i * STAGGER) for i, body in enumerate(bodies)))

    def settled(name: str) -> dict[str, Any] | None:
        body = stack.kube.get("recurringtasks", ns, name)
        status = (body or {}).get("status") or {}
        if status.get("observedGeneration") != 2 or status.get("occurrences") != 2 or status.get("pending"):
            return None
        return body

    record = assert_whole_record(stack, ns, occurrences={f"series-{i}": 2 for i in range(SERIES)})
    tasks = {task["metadata"]["name"]: task for task in stack.objects("tasks", ns)}
    outcomes = []
    for first in bodies:
        name, uid = first["metadata"]["name"], first["metadata"]["uid"]
        status = stack.wait(f"{name} settled at generation 2", lambda n=name: settled(n))["status"]
        current = tasks.get(status["currentTask"])
        assert current is not None, f"{name}: status names {status['currentTask']}, which does not exist"
        assert not current["spec"].get("completed"), f"{name}: its current occurrence is not open"
        owned = [t for t in tasks.values() if t["metadata"]["labels"].get(LABEL_RECURRING_TASK_UID) == uid]
        assert sorted(t["spec"].get("completed", False) for t in owned) == [False, True], name
        due = _parse(current["spec"]["dueAt"])
        assert due in (old_next, new_next), f"{name}: its next occurrence is due {due}, no serial order's"
        assert _parse(status["nextDueAt"]) == due
        owned_rows = [row for row in record.tasks if row["recurring_task_uid"] == uid]
        [completion] = [row["completed_at"] for row in owned_rows if row["completed_at"]]
        assert _parse(status["lastCompletedAt"]) == completion, (
            f"{name}: lastCompletedAt is not its completion"
        )
        outcomes.append("complete-then-edit" if due == old_next else "edit-then-complete")
    # Nothing was made and taken back: every occurrence row is a live task.
    assert [row["name"] for row in record.tasks if row["deleted_at"] is not None] == []
    print(f"serial outcomes: {sorted(outcomes)}")


def test_an_occurrence_completed_as_its_series_is_deleted_leaves_nothing_of_the_series(
    cronjob_stack: Stack,
) -> None:
    stack = cronjob_stack
    ns = stack.new_namespace("complete-and-delete")
    _, bodies = _start(stack, ns)
    uids = {body["metadata"]["uid"] for body in bodies}

    def complete_then_delete(body: dict[str, Any], pause: float) -> None:
        stack.kube.patch("tasks", ns, body["status"]["currentTask"], {"spec": {"completed": True}})
        time.sleep(pause)
        stack.kube.delete("recurringtasks", ns, body["metadata"]["name"])

    _at_once(*(lambda b=body, i=i: complete_then_delete(b, i * STAGGER) for i, body in enumerate(bodies)))

    def nothing_left() -> bool:
        return not stack.objects("recurringtasks", ns) and not stack.objects("tasks", ns)

    stack.wait("every series and occurrence gone", nothing_left)
    record = assert_whole_record(stack, ns)
    assert stack.objects("tasks", ns) == [], "an occurrence outlived its series"
    assert {row["uid"] for row in record.recurring_tasks} == uids
    assert [row["name"] for row in record.recurring_tasks if row["deleted_at"] is None] == []
    assert [row["name"] for row in record.tasks if row["deleted_at"] is None] == []
    # The events of each series end with its deletion; an occurrence recorded is also recorded deleted.
    for row in record.recurring_tasks:
        subject = f"{ns}/{row['name']}"
        types = [event["event_type"] for event in record.outbox if event["subject"] == subject]
        assert types[-1] == "recurringtask.deleted", f"{row['name']}: {types}"
        assert types.count("recurringtask.deleted") == 1, f"{row['name']}: {types}"
    for row in record.tasks:
        subject = f"{ns}/{row['name']}"
        types = [event["event_type"] for event in record.outbox if event["subject"] == subject]
        assert types[-1:] == ["task.deleted"], f"{row['name']}: {types}"
