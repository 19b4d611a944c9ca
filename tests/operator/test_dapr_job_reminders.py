"""Reminders on the Dapr Scheduler (``reminder_delivery=dapr-jobs``), end to end.

The real operator (Kopf, in a thread) against the API emulator, PostgreSQL and
a real SMTP sink; the Dapr double stands for the sidecar and the Scheduler
(its Jobs API and its triggers over HTTP to the operator's ``/job/<name>``).
The operator and the double's Scheduler share one clock the tests move, so a
job fires when the test says its time has come.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import kube_emulator as apiserver
from tests.kubeclient import KubeClient, condition
from tests.stacks import event_types, operator_settings
from todo_devstack import postgres
from todo_devstack.dapr import App, DaprThread
from todo_devstack.operator_thread import OperatorThread
from todo_devstack.smtp import SmtpSink
from todo_operator.clock import ManualClock
from todo_operator.domain import crds
from todo_operator.telemetry.settings import TelemetrySettings


@dataclass
class Stack:
    kube: KubeClient
    clock: ManualClock
    smtp: SmtpSink
    dapr: DaprThread
    app: App
    database_url: str
    metrics_url: str

    def triggers_answered(self) -> dict[str, float]:
        """``todo_reminder_job_triggers_total`` by outcome, scraped from the operator's /metrics."""
        text = httpx.get(self.metrics_url, timeout=10).text
        return {
            sample.labels["outcome"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "todo_reminder_job_triggers"
            for sample in family.samples
            if sample.name.endswith("_total")
        }

    def jobs(self) -> dict[str, Any]:
        """Name -> the job as the Scheduler keeps it (its wire form)."""
        return self.dapr.call(lambda d: {name: job.wire for name, job in d.jobs.jobs.items()})

    def triggers(self, name: str) -> list[str]:
        return self.dapr.call(lambda d: [t.outcome for t in d.jobs.triggers if t.name == name])

    def outbox(self, namespace: str) -> list[str]:
        return event_types(self.database_url, namespace)


@pytest.fixture(scope="module")
def stack(
    postgres_server: postgres.ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database_url = postgres_server.create_database("dapr_jobs", template="todo_template")
    clock = ManualClock(datetime.now(tz=UTC).replace(microsecond=0))
    folder = pathlib.Path(tmp_path_factory.mktemp("mail"))
    port = postgres.free_port()
    app = App(url=f"http://127.0.0.1:{port}")
    with (
        apiserver.ApiServerThread(crds=crds.all_crds()) as api,
        SmtpSink(folder=folder) as smtp,
        DaprThread(job_app=app, job_clock=clock.now) as dapr,
    ):
        clock.on_change(lambda: dapr.call(lambda d: d.jobs.wake()))
        settings = operator_settings(
            database_url=database_url,
            api_url=api.url,
            smtp_port=smtp.port,
            reminder_delivery="dapr-jobs",
            dapr_enabled=False,
            dapr_http_endpoint=dapr.url,
            dapr_app_port=port,
            reminder_job_retry_seconds=0.2,
            reminder_job_max_retries=5,
        )
        metrics_port = postgres.free_port()
        telemetry = TelemetrySettings(metrics_port=metrics_port, metrics_host="127.0.0.1")
        with OperatorThread(settings, clock=clock, telemetry=telemetry):
            kube = KubeClient(api.url)
            yield Stack(
                kube=kube,
                clock=clock,
                smtp=smtp,
                dapr=dapr,
                app=app,
                database_url=database_url,
                metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
            )
            kube.close()


_namespaces = iter(range(1, 1000))


@pytest.fixture
def ns(stack: Stack) -> str:
    name = f"jobs-{next(_namespaces)}"
    stack.kube.create_namespace(name)
    return name


def reminder_task(stack: Stack, ns: str, name: str, *, minutes: int = 10) -> tuple[str, datetime]:
    """A task with one reminder ``minutes`` from now; (the Reminder's name, its moment)."""
    at = stack.clock.now() + timedelta(minutes=minutes)
    stack.kube.create(
        "tasks",
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "title": name.title(),
                "owner": "alice@example.com",
                "dueAt": (at + timedelta(hours=1)).isoformat(),
                "reminders": [{"at": at.isoformat()}],
            },
        },
    )
    return f"{name}-at-{at.astimezone(UTC):%Y%m%dt%H%M}", at


def scheduled(stack: Stack, ns: str, name: str) -> dict[str, Any]:
    return wait_phase(stack, ns, name, "Scheduled")


def wait_phase(stack: Stack, namespace: str, name: str, phase: str) -> dict[str, Any]:
    return stack.kube.wait_for_status(
        "reminders",
        namespace,
        name,
        lambda s: s.get("phase") == phase and s.get("observedGeneration"),
        what=phase,
    )


def sent_to(stack: Stack, reminder: dict[str, Any]) -> int:
    uid = reminder["metadata"]["uid"]
    return sum(1 for message in stack.smtp.messages if message["X-Todo-Reminder"] == uid)


def test_one_job_per_reminder_fires_at_its_moment_and_sends_once(stack: Stack, ns: str) -> None:
    name, at = reminder_task(stack, ns, "passport")
    reminder = scheduled(stack, ns, name)
    job = reminder["status"]["daprJob"]
    assert job == f"reminder-{reminder['metadata']['uid']}-g1"
    wire = stack.jobs()[job]
    assert datetime.fromisoformat(wire["dueTime"]) == at, "dueTime is the fire time"
    assert wire["data"] == {"namespace": ns, "name": name, "uid": reminder["metadata"]["uid"]}
    assert condition(reminder["status"])["reason"] == "Scheduled"
    assert "cronJob" not in reminder["status"], "no CronJob in this mode"

    stack.clock.set(at)
    sent = wait_phase(stack, ns, name, "Sent")
    assert sent_to(stack, sent) == 1
    assert "daprJob" not in sent["status"], "the job is done"
    # At least once: a reconcile that scheduled the job again (overwrite) while it fired may
    # have it fire twice; the claim sends it once all the same.
    stack.kube.wait_for("the trigger recorded", lambda: "succeeded" in stack.triggers(job))
    assert set(stack.triggers(job)) == {"succeeded"}
    assert job not in stack.jobs()
    assert stack.outbox(ns).count("reminder.sent") == 1


def test_a_trigger_delivered_twice_sends_one_email(stack: Stack, ns: str) -> None:
    name, at = reminder_task(stack, ns, "twice")
    reminder = scheduled(stack, ns, name)
    job, data = reminder["status"]["daprJob"], stack.jobs()[reminder["status"]["daprJob"]]["data"]
    stack.clock.set(at)
    sent = wait_phase(stack, ns, name, "Sent")
    before = stack.triggers_answered()
    assert stack.dapr.run(lambda d: d.jobs.trigger_again(job, data)) == 200, "answered: nothing left to do"
    after = stack.triggers_answered()
    assert (after["skipped"] - before["skipped"], after["sent"] - before["sent"]) == (1, 0)
    assert sent_to(stack, sent) == 1
    assert stack.outbox(ns).count("reminder.sent") == 1


def test_the_app_down_at_the_trigger_is_retried_and_sent_once(stack: Stack, ns: str) -> None:
    name, at = reminder_task(stack, ns, "app-down")
    reminder = scheduled(stack, ns, name)
    job = reminder["status"]["daprJob"]
    nowhere = App(url=f"http://127.0.0.1:{postgres.free_port()}")  # nothing listens there

    def point(d: Any, to: App) -> None:
        d.jobs.app = to

    stack.dapr.call(lambda d: point(d, nowhere))
    stack.clock.set(at)
    stack.kube.wait_for("a failed trigger", lambda: "failed" in stack.triggers(job))
    stack.dapr.call(lambda d: point(d, stack.app))
    stack.clock.advance(timedelta(seconds=1))  # the failure policy's interval (0.2 s) passes
    sent = wait_phase(stack, ns, name, "Sent")
    assert sent_to(stack, sent) == 1
    stack.kube.wait_for("the trigger recorded", lambda: stack.triggers(job)[-1:] == ["succeeded"])
    assert stack.triggers(job)[0] == "failed", "the first trigger found no one"


def test_the_scheduler_down_when_scheduling_is_retried(stack: Stack, ns: str) -> None:
    stack.dapr.call(lambda d: d.jobs.go_down())
    try:
        name, at = reminder_task(stack, ns, "scheduler-down")
        stack.kube.wait_for(
            "a refused schedule, retried",
            lambda: stack.dapr.call(lambda d: d.jobs.schedule_requests) >= 2,
        )
        assert (stack.kube.get("reminders", ns, name) or {}).get("status", {}).get("phase") != "Scheduled"
    finally:
        stack.dapr.call(lambda d: d.jobs.come_up())
    reminder = scheduled(stack, ns, name)
    stack.clock.set(at)
    assert sent_to(stack, wait_phase(stack, ns, name, "Sent")) == 1
    assert reminder["status"]["daprJob"]


def test_a_job_deleted_behind_the_operators_back_is_scheduled_again(stack: Stack, ns: str) -> None:
    name, at = reminder_task(stack, ns, "lost")
    reminder = scheduled(stack, ns, name)
    job = reminder["status"]["daprJob"]
    assert stack.dapr.call(lambda d: d.jobs.forget(job))
    # Its moment passes with no trigger; past the grace period the due work catches it up.
    stack.clock.set(at + timedelta(minutes=6))
    sent = wait_phase(stack, ns, name, "Sent")
    assert condition(sent["status"])["reason"] == "SentLate"
    assert sent_to(stack, sent) == 1
    stack.kube.wait_for("scheduled again under its name, due now", lambda: "succeeded" in stack.triggers(job))


def test_completing_the_task_cancels_the_job_and_an_edit_replaces_it(stack: Stack, ns: str) -> None:
    name, at = reminder_task(stack, ns, "edited")
    first = scheduled(stack, ns, name)["status"]["daprJob"]
    later = at + timedelta(minutes=30)
    stack.kube.patch("reminders", ns, name, {"spec": {"at": later.isoformat()}})
    second = stack.kube.wait_for_status(
        "reminders", ns, name, lambda s: s.get("daprJob", first) != first, what="a new job"
    )["status"]["daprJob"]
    assert second.endswith("-g2")
    jobs = stack.jobs()
    assert first not in jobs, "the earlier generation's job is deleted"
    assert datetime.fromisoformat(jobs[second]["dueTime"]) == later

    stack.kube.patch("tasks", ns, "edited", {"spec": {"completed": True}})
    wait_phase(stack, ns, name, "Cancelled")
    stack.kube.wait_for("the job is gone", lambda: second not in stack.jobs())
    stack.clock.set(later + timedelta(minutes=1))
    assert stack.triggers(second) == []


def test_a_trigger_that_is_not_for_a_live_reminder_is_final_404(stack: Stack, ns: str) -> None:
    name, _ = reminder_task(stack, ns, "stale")
    reminder = scheduled(stack, ns, name)
    uid = reminder["metadata"]["uid"]
    before = stack.triggers_answered()
    for job in (
        "not-ours",
        "reminder-0-g1",
        f"reminder-{uid}-g7",
        "reminder-00000000-0000-4000-8000-000000000000-g1",
    ):
        assert stack.dapr.run(lambda d, job=job: d.jobs.trigger_again(job, {})) == 404, job
    assert sent_to(stack, reminder) == 0
    assert stack.triggers_answered()["not_ours"] - before["not_ours"] == 4
