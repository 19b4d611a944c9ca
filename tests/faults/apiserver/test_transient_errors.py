"""F15: transient API and database errors are retried until they pass; nothing is lost or doubled.

The emulator answers the operator's own requests with 500, 503 and 429 (each
the next few times it makes them), PostgreSQL drops the operator's
connections, and a fault that lasts shows itself on the object while it
lasts. The operator must retry each (Kopf's ``TemporaryError``, after
``retry_delay_seconds``), count it in ``todo_reconcile_errors_total{reason=
"transient"}`` and end with the same record as without the faults.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from tests.faults.apiserver.conftest import NAMESPACE, Stack
from tests.faults.record import assert_nothing_lost_nothing_twice

# Kopf keeps a handler's progress in this annotation while it retries (settings.persistence).
PROGRESS = "todo.dev/reconcile_recurring_task"  # the handler id given in handlers.py


def progress(body: dict[str, Any] | None) -> dict[str, Any]:
    annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
    found: dict[str, Any] = json.loads(annotations.get(PROGRESS, "{}"))
    return found


def drop_operator_connections(database_url: str) -> int:
    """What a PostgreSQL failover or restart does to open connections: end them (the pool must notice)."""
    database = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_5xx_429_and_dropped_database_connections_are_retried_and_lose_nothing(stack: Stack) -> None:
    before = stack.transient_errors("RecurringTask") + stack.transient_errors("Task")
    armed = [
        stack.faults(lambda f: f.fail_next(2, status=503, verb="create", plural="tasks")),
        stack.faults(
            lambda f: f.fail_next(2, status=429, verb="patch", plural="tasks", subresource="status")
        ),
        stack.faults(
            lambda f: f.fail_next(1, status=500, verb="patch", plural="recurringtasks", subresource="status")
        ),
    ]
    for name in ("plants", "bins", "post"):
        stack.create_recurring_task(name)
    first = {
        name: stack.wait_occurrence(name, 1)["status"]["currentTask"] for name in ("plants", "bins", "post")
    }
    # (The occurrences' own handlers may still be at their second status write: wait for them.)
    stack.wait_for("every armed error answered", lambda: [fault.fired for fault in armed] == [2, 2, 1])

    # Completing an occurrence reads its RecurringTask and the occurrence back (get) and records
    # the completion in PostgreSQL, whose connections are cut just before.
    gets = [
        stack.faults(lambda f: f.fail_next(2, status=500, verb="get", plural="recurringtasks")),
        stack.faults(lambda f: f.fail_next(2, status=503, verb="get", plural="tasks")),
    ]
    assert drop_operator_connections(stack.database_url) > 0
    stack.complete(first["plants"])
    stack.wait_occurrence("plants", 2)
    stack.wait_for("every armed error answered", lambda: [fault.fired for fault in gets] == [2, 2])

    assert_nothing_lost_nothing_twice(
        stack.sources, NAMESPACE, occurrences={"plants": 2, "bins": 1, "post": 1}, reminders_sent=0
    )
    injected = sum(fault.fired for fault in [*armed, *gets])
    retried = stack.transient_errors("RecurringTask") + stack.transient_errors("Task") - before
    assert retried >= injected  # each injected error was a retry, visible in the metric


def test_a_lasting_fault_shows_on_the_object_until_it_passes(stack: Stack) -> None:
    fault = stack.faults(lambda f: f.fail_next(10_000, status=503, verb="create", plural="tasks"))
    stack.create_recurring_task("plants")
    retrying = stack.wait_for(
        "the retries shown on the object",
        lambda: (p := progress(stack.get("recurringtasks", "plants"))).get("retries", 0) >= 3 and p,
    )
    assert retrying["message"] == "TransientKubeError: injected fault"
    assert retrying["success"] is False
    assert retrying["failure"] is False  # not given up: still retrying
    assert stack.transient_errors("RecurringTask") >= 3
    assert stack.operators[0].alive

    stack.faults(lambda f: f.heal())
    stack.wait_occurrence("plants", 1)
    # Done: Kopf clears its progress once the handler returned (a moment after the status write).
    stack.wait_for("the retries cleared", lambda: progress(stack.get("recurringtasks", "plants")) == {})
    assert fault.fired >= 3
    assert_nothing_lost_nothing_twice(stack.sources, NAMESPACE, occurrences={"plants": 1}, reminders_sent=0)
