"""F1/F2: the operator is killed (SIGKILL) between a side effect and the record of it.

Here the operator runs as a real ``todo-operator run`` process against its
own API emulator and database, so it can be killed for real. The emulator is
told to hold one kind of request open; once the operator is stuck in it, the
process is killed, the hold is lifted and a new process starts. Whatever the
dead one did must not be done twice.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import kmock
import psycopg
import pytest

import kube_emulator as apiserver
from tests.kubeclient import KubeClient
from tests.operator.test_operator_loop import recurring_task, wait_current
from todo_devstack import postgres
from todo_operator.domain import crds, resources


@pytest.fixture
def stack(
    postgres_server: postgres.ThrowawayPostgres, tmp_path: pathlib.Path
) -> Iterator[tuple[apiserver.ApiServerThread, str, pathlib.Path]]:
    database_url = postgres_server.create_database(f"crash_{tmp_path.name}", template="todo_template")
    with apiserver.ApiServerThread(crds=crds.all_crds()) as server:
        yield server, database_url, tmp_path


class OperatorProcess:
    def __init__(self, *, api_url: str, database_url: str, log: pathlib.Path) -> None:
        env = {
            **os.environ,
            "TODO_DATABASE_URL": database_url,
            "TODO_KUBE_API_URL": api_url,
            "TODO_RETRY_DELAY_SECONDS": "0.5",
        }
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "todo_operator.cli", "run", "--log-level", "INFO"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def hold(
    server: apiserver.ApiServerThread,
    *,
    subresource: str | None,
    when: Callable[[Any], bool],
    method: kmock.method = kmock.method.PATCH,
    resource: tuple[str, str, str] = (resources.GROUP, resources.VERSION, "recurringtasks"),
) -> tuple[threading.Event, Callable[[], None]]:
    """Hold requests matching ``when`` open (RecurringTask PATCHes by default); return (reached, release)."""
    reached = threading.Event()

    async def stall(request: Any) -> Any:
        if not when(request.data):
            # kmock's signal for "matched, nothing to say": the emulator serves it as usual
            # and the reaction stays armed (returning None would disarm it for good).
            raise NotImplementedError
        reached.set()
        await asyncio.sleep(3600)

    def install(emulator: Any) -> Any:
        return emulator[method, kmock.resource(*resource), kmock.subresource(subresource)] << stall

    reaction = server.inject(install)

    def release() -> None:
        server.inject(lambda emulator: reaction._disabled.set())

    return reached, release


def _any_request(data: Any) -> bool:
    return True


def _promoting(data: Any) -> bool:
    # The status write that makes the occurrence, now made, the current one.
    status = (data or {}).get("status") if isinstance(data, dict) else None
    return bool(status and status.get("currentTask") and not status.get("pending"))


def _making(data: Any) -> bool:
    return isinstance(data, dict) and bool((data.get("metadata") or {}).get("name"))


def _kopf_done(data: Any) -> bool:
    # Kopf's last patch after a successful handler stores the handled spec as the diff
    # base (a merge patch); its finalizer patches are JSON patches (lists).
    if not isinstance(data, dict):
        return False
    annotations = (data.get("metadata") or {}).get("annotations") or {}
    return "todo.dev/last-handled-configuration" in annotations


def _names(server: apiserver.ApiServerThread, resource: str, namespace: str) -> list[str]:
    return [item["metadata"]["name"] for item in server.objects(resource, namespace)]


def count(database_url: str, sql: str, *args: Any) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


TASKS = (resources.GROUP, resources.VERSION, "tasks")


@pytest.mark.parametrize(
    ("subresource", "when", "moment", "method", "resource", "made"),
    [
        # F1: the next occurrence is committed (status.pending), but its Task was never created.
        (None, _making, "after the commit, before the occurrence", kmock.method.POST, TASKS, 0),
        # F1: the occurrence exists and PostgreSQL has the records, but the status
        # naming it current was never written.
        ("status", _promoting, "after the side effects, before the status", kmock.method.PATCH, None, 1),
        # F2: the handler finished (status written); Kopf's own progress patch never landed.
        (None, _kopf_done, "after the handler, before Kopf's progress patch", kmock.method.PATCH, None, 1),
    ],
    ids=["F1-before-the-occurrence", "F1-mid-handler", "F2-before-progress"],
)
def test_a_killed_operator_creates_nothing_twice(
    stack: tuple[apiserver.ApiServerThread, str, pathlib.Path],
    subresource: str | None,
    when: Callable[[Any], bool],
    moment: str,
    method: kmock.method,
    resource: tuple[str, str, str] | None,
    made: int,
) -> None:
    server, database_url, tmp_path = stack
    kube = KubeClient(server.url)
    kube.create_namespace("crash")
    reached, release = hold(
        server,
        subresource=subresource,
        when=when,
        method=method,
        **({"resource": resource} if resource else {}),
    )

    first = OperatorProcess(api_url=server.url, database_url=database_url, log=tmp_path / "operator.log")
    try:
        kube.create("recurringtasks", "crash", recurring_task("plants"))
        assert reached.wait(30), f"the operator never got to the moment {moment}"
        assert len(kube.list("tasks", "crash")) == made  # the side effect happened, or not yet
    finally:
        first.kill()
    release()

    second = OperatorProcess(api_url=server.url, database_url=database_url, log=tmp_path / "operator.log")
    try:
        body = wait_current(kube, "crash", "plants", occurrences=1)
        current = body["status"]["currentTask"]
        kube.wait_for_status(
            "tasks", "crash", current, lambda s: s.get("phase") == "Open", what="the task recorded"
        )
    finally:
        second.stop()

    assert [task["metadata"]["name"] for task in kube.list("tasks", "crash")] == [current]
    assert count(database_url, "SELECT count(*) FROM tasks") == 1
    assert count(database_url, "SELECT count(*) FROM recurring_tasks") == 1
    assert count(database_url, "SELECT count(*) FROM outbox WHERE event_type = 'task.created'") == 1
    assert count(database_url, "SELECT count(*) FROM outbox WHERE event_type = 'recurringtask.created'") == 1
    kube.close()


def test_an_operator_killed_in_a_finalizers_cleanup_finishes_it_once(
    stack: tuple[apiserver.ApiServerThread, str, pathlib.Path],
) -> None:
    """F13 with a real crash: killed while deleting a deleted Task's CronJob (the row already cancelled)."""
    server, database_url, tmp_path = stack
    kube = KubeClient(server.url)
    kube.create_namespace("crash")
    due = datetime.now(tz=UTC) + timedelta(days=2)
    task = {
        "metadata": {"name": "renew"},
        "spec": {
            "title": "Renew",
            "owner": "alice@example.com",
            "dueAt": due.isoformat(),
            "reminders": [{"before": "1h"}],
        },
    }
    first = OperatorProcess(api_url=server.url, database_url=database_url, log=tmp_path / "operator.log")
    try:
        kube.create("tasks", "crash", task)
        scheduled = kube.wait_for_status(
            "reminders", "crash", "renew-before-1h", lambda s: s.get("phase") == "Scheduled", what="Scheduled"
        )
        assert scheduled["status"]["cronJob"] in _names(server, "batch/v1/cronjobs", "crash")
        reached, release = hold(
            server,
            subresource=None,
            when=_any_request,
            method=kmock.method.DELETE,
            resource=("batch", "v1", "cronjobs"),
        )
        kube.delete("tasks", "crash", "renew")
        assert reached.wait(30), "the operator never got to deleting the CronJob"
        # Killed mid-cleanup: the row says Cancelled, the CronJob and the finalizers are still there.
        assert count(database_url, "SELECT count(*) FROM reminders WHERE phase = 'Cancelled'") == 1
        assert _names(server, "batch/v1/cronjobs", "crash")
    finally:
        first.kill()
    release()

    second = OperatorProcess(api_url=server.url, database_url=database_url, log=tmp_path / "operator.log")
    try:
        kube.wait_for(
            "everything gone",
            lambda: (
                not any(
                    _names(server, resource, "crash")
                    for resource in (
                        "todo.dev/v1alpha1/tasks",
                        "todo.dev/v1alpha1/reminders",
                        "batch/v1/cronjobs",
                    )
                )
            ),
        )
    finally:
        second.stop()

    cancelled = "SELECT count(*) FROM outbox WHERE event_type = 'reminder.cancelled'"
    assert count(database_url, cancelled) == 1
    assert count(database_url, "SELECT count(*) FROM outbox WHERE event_type = 'task.deleted'") == 1
    assert count(database_url, "SELECT count(*) FROM outbox WHERE event_type = 'reminder.sent'") == 0
    assert count(database_url, "SELECT count(*) FROM reminders WHERE phase = 'Cancelled'") == 1
    assert count(database_url, "SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL") == 1
    kube.close()
