"""F5: duplicated, out-of-order and lost watch events; a watch restarted after 410 Gone.

Kopf reacts to watch events; the operator must not depend on seeing each
change exactly once, nor in the order it happened. Duplicates, and streams
that lag behind each other (a Task's events before its RecurringTask's, a
Reminder's late), must change nothing: every fact once (occurrences, rows,
events, e-mails). A lost event is repaired when the watch restarts: a 410
Gone (compacted history) makes Kopf list everything again, and the
operator, being level-triggered, acts on what it finds.

Out of order *within* one object's stream (an older state after a newer
one) is something a conformant API server never does, and is not tested
here (the emulator can do it: ``replay_stale_watch_events``).
"""

from __future__ import annotations

import functools
import time
from datetime import timedelta

from kube_emulator import faults
from tests.faults.apiserver.conftest import NAMESPACE, Stack, tomorrow_at_nine
from tests.faults.record import assert_nothing_lost_nothing_twice

REMINDER = [{"before": "1h"}]
LAST_HANDLED = "todo.dev/last-handled-configuration"


def duplicate(arm: faults.Faults, *, plural: str) -> faults.WatchFault:
    return arm.duplicate_watch_events(1_000, plural=plural)


def delay(arm: faults.Faults, *, plural: str) -> faults.WatchFault:
    return arm.delay_watch_events(10, seconds=0.2, plural=plural)


def test_duplicated_and_reordered_watch_events_do_nothing_twice(stack: Stack) -> None:
    armed: list[faults.WatchFault] = []
    for plural in ("recurringtasks", "tasks", "reminders"):
        armed.append(stack.faults(functools.partial(duplicate, plural=plural)))
    # Two streams lag: the tasks' events overtake those of their RecurringTasks and reminders.
    for plural in ("recurringtasks", "reminders"):
        armed.append(stack.faults(functools.partial(delay, plural=plural)))
    names = ("plants", "bins", "post")
    for name in names:
        stack.create_recurring_task(name, reminders=REMINDER)
    first = {name: stack.wait_occurrence(name, 1)["status"]["currentTask"] for name in names}

    # The reminders (an hour before each first occurrence) fall due; then the occurrences are done.
    stack.clock.set(tomorrow_at_nine() - timedelta(minutes=30))
    stack.smtp.wait_for(len(names))
    for name in names:
        stack.complete(first[name])
    second = stack.wait_occurrence("plants", 2)["status"]["currentTask"]
    stack.complete(second)
    stack.wait_occurrence("plants", 3)

    assert_nothing_lost_nothing_twice(
        stack.sources, NAMESPACE, occurrences={"plants": 3, "bins": 2, "post": 2}, reminders_sent=len(names)
    )
    assert all(fault.fired > 0 for fault in armed), [fault.fired for fault in armed]


def test_a_lost_event_is_recovered_when_the_watch_restarts_after_410_gone(stack: Stack) -> None:
    stack.create_recurring_task("plants")
    first = stack.wait_occurrence("plants", 1)["status"]["currentTask"]
    stack.wait_for(
        "the occurrence handled",
        lambda: (
            LAST_HANDLED
            in (((stack.get("tasks", first) or {}).get("metadata") or {}).get("annotations") or {})
        ),
    )
    drop = stack.faults(lambda f: f.drop_watch_events(1, plural="tasks"))
    stack.complete(first)
    stack.wait_for("the completion's event dropped", lambda: drop.fired == 1)
    time.sleep(1.0)  # the operator had its chance: it did not see the completion
    assert (stack.get("recurringtasks", "plants") or {})["status"]["occurrences"] == 1

    cut = stack.faults(lambda f: f.expire_watches())
    assert cut >= 3  # Kopf's watches of recurringtasks, tasks and reminders (at least)
    stack.wait_occurrence("plants", 2)
    assert stack.faults(lambda f: f.gone_answered) >= cut
    assert_nothing_lost_nothing_twice(stack.sources, NAMESPACE, occurrences={"plants": 2}, reminders_sent=0)
