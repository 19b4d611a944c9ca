"""Metrics, traces and logs of the running system, read the way Prometheus, Zipkin and a log shipper do.

The session's operator serves ``/metrics`` on loopback (conftest); each test
reads it before and after a scenario and checks what the scenario changed.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import kube_emulator as apiserver
from tests import tracecapture
from tests.api import harness
from tests.api.harness import ALICE, Api, wait_for
from tests.kubeclient import KubeClient
from todo_devstack.dapr import DaprThread
from todo_devstack.smtp import SmtpSink
from todo_operator.telemetry import logs

api = harness.api
make_api = harness.make_api

pytestmark = pytest.mark.usefixtures("operator")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_url(operator_metrics_port: int) -> str:
    return f"http://127.0.0.1:{operator_metrics_port}/metrics"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def recurring(name: str) -> dict[str, Any]:
    start = (datetime.now(tz=UTC) + timedelta(days=1)).strftime("%Y-%m-%dT09:00:00")
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "RecurringTask",
        "metadata": {"name": name},
        "spec": {
            "schedule": {"every": "daily", "start": start},
            "taskTemplate": {"title": "Water the plants", "owner": ALICE},
        },
    }


@pytest.mark.usefixtures("clock_at_real_time")
def test_the_operators_metrics_follow_a_scenario(
    kube: KubeClient,
    namespace: str,
    metrics_url: str,
    smtp: SmtpSink,
    api_server: apiserver.ApiServerThread,
    operator_database_url: str,
) -> None:
    before = scrape(metrics_url)

    # A recurring task: its first occurrence, completed, opens the second; the second, skipped
    # (deleted), the third.
    kube.create("recurringtasks", namespace, recurring("plants"))
    first = kube.wait_for_status(
        "recurringtasks", namespace, "plants", lambda s: s.get("occurrences") == 1, what="occurrence 1"
    )["status"]["currentTask"]
    kube.patch("tasks", namespace, first, {"spec": {"completed": True}})
    second = kube.wait_for_status(
        "recurringtasks", namespace, "plants", lambda s: s.get("occurrences") == 2, what="occurrence 2"
    )["status"]["currentTask"]
    kube.delete("tasks", namespace, second)
    kube.wait_for_status(
        "recurringtasks", namespace, "plants", lambda s: s.get("occurrences") == 3, what="occurrence 3"
    )

    # A reminder sent by `todo-operator notify` (what a CronJob's pod runs), not by the operator:
    # the operator's /metrics still counts it, from PostgreSQL.
    due = datetime.now(tz=UTC) + timedelta(minutes=60, seconds=20)
    kube.create(
        "tasks",
        namespace,
        {
            "apiVersion": "todo.dev/v1alpha1",
            "kind": "Task",
            "metadata": {"name": "passport"},
            "spec": {
                "title": "Renew passport",
                "owner": ALICE,
                "dueAt": due.isoformat(),
                "reminders": [{"before": "1h"}],
            },
        },
    )
    kube.wait_for_status(
        "reminders",
        namespace,
        "passport-before-1h",
        lambda s: s.get("phase") == "Scheduled",
        what="Scheduled",
    )
    environment = {
        **os.environ,
        "TODO_DATABASE_URL": operator_database_url,
        "TODO_KUBE_API_URL": api_server.url,
        "TODO_SMTP_PORT": str(smtp.port),
        "TODO_SMTP_FROM": "todo@example.com",
    }
    notify = subprocess.run(
        [
            sys.executable,
            "-m",
            "todo_operator.cli",
            "notify",
            "--reminder",
            f"{namespace}/passport-before-1h",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert notify.returncode == 0, notify.stderr
    (message,) = smtp.messages
    # The notify process logs JSON lines, and never the e-mail's text.
    lines = [json.loads(line) for line in notify.stdout.splitlines() if line.startswith("{")]
    assert all(line["service"] == "todo-operator-notify" for line in lines)
    assert str(message.get_payload()).strip()[:40] not in notify.stdout

    after = wait_for(
        "the outbox drained",
        lambda: (s := scrape(metrics_url)) and value(s, "todo_outbox_pending_events") == 0 and s,
    )

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("todo_occurrences_spawned_total") == 3
    assert delta("todo_occurrences_skipped_total") == 1
    assert delta("todo_tasks_completed_total", recurring="true") == 1
    assert delta("todo_tasks_completed_total", recurring="false") == 0
    assert delta("todo_recurring_tasks_created_total") == 1
    assert delta("todo_reminders_scheduled_total") == 1
    assert delta("todo_reminders_sent_total", timing="on_time") == 1
    # Delivery lag: one more observation, sent within a minute of its fire time.
    assert delta("todo_reminder_delivery_lag_seconds_count") == 1
    assert delta("todo_reminder_delivery_lag_seconds_bucket", le="60.0") == 1
    assert value(after, "todo_recurring_tasks", phase="Active") >= 1
    assert value(after, "todo_recurring_task_next_due_seconds_gcount") >= 1

    # In-process: reconciles timed per kind, next occurrences computed, events published per topic.
    # (Completing an occurrence advances its schedule from the Task's handler: one RecurringTask call.)
    assert delta("todo_reconcile_duration_seconds_count", kind="RecurringTask", action="reconcile") >= 1
    assert delta("todo_reconcile_duration_seconds_count", kind="Task", action="reconcile") >= 3
    assert delta("todo_reconcile_duration_seconds_count", kind="Reminder", action="reconcile") >= 1
    assert delta("todo_next_occurrence_duration_seconds_count") >= 2
    # recurringtask.created, two task.created, task.completed, and the rest: all on the topic.
    assert delta("todo_events_published_total", topic="task-events") >= 4
    assert delta("todo_events_published_total", topic="reminders") >= 2  # scheduled, sent
    assert value(after, "todo_scheduler_last_run_timestamp_seconds") > 0
    assert value(after, "todo_record_read_errors_total") == 0
    assert value(after, "process_resident_memory_bytes") > 0


def test_a_spec_the_operator_refuses_is_counted_as_an_invalid_spec_error(
    kube: KubeClient, namespace: str, metrics_url: str
) -> None:
    before = scrape(metrics_url)
    never = recurring("never")
    never["spec"]["schedule"] = {
        "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "start": "2027-01-01T09:00:00",
    }
    kube.create("recurringtasks", namespace, never)
    kube.wait_for_status(
        "recurringtasks", namespace, "never", lambda s: bool(s.get("conditions")), what="status"
    )
    after = wait_for(
        "the error counted",
        lambda: (
            (s := scrape(metrics_url))
            and value(s, "todo_reconcile_errors_total", kind="RecurringTask", reason="invalid_spec")
            > value(before, "todo_reconcile_errors_total", kind="RecurringTask", reason="invalid_spec")
            and s
        ),
    )
    assert value(after, "todo_reconcile_errors_total", kind="Task", reason="invalid_spec") == value(
        before, "todo_reconcile_errors_total", kind="Task", reason="invalid_spec"
    )


def test_the_apis_metrics_count_requests_by_route_template(api: Api) -> None:
    alice = api.as_user(ALICE)
    for _ in range(3):
        assert alice.get("/api/v1/tasks").status_code == 200
    assert alice.get("/api/v1/tasks/no-such-task").status_code == 404
    samples = scrape(f"{api.url}/metrics")
    assert value(samples, "todo_api_requests_total", method="GET", route="/api/v1/tasks", status="200") == 3
    # The route template, never the name in the path (bounded labels).
    assert (
        value(samples, "todo_api_requests_total", method="GET", route="/api/v1/tasks/{name}", status="404")
        == 1
    )
    assert not any("no-such-task" in str(labels) for _, labels in samples)
    assert value(samples, "todo_api_request_duration_seconds_count", method="GET", route="/api/v1/tasks") == 3


def test_one_trace_follows_a_change_from_the_rest_request_to_the_consumer(api: Api, dapr: DaprThread) -> None:
    capture = tracecapture.capture()
    log = io.StringIO()
    handler = logs.handler(service="todo-tests", stream=log)
    logging.getLogger().addHandler(handler)
    consumer_log = logging.getLogger("todo_operator.events.consumer")
    consumer_log.setLevel(logging.INFO)
    capture.capturing = True
    try:
        alice = api.as_user(ALICE)
        created = alice.post(
            "/api/v1/recurring-tasks",
            json={
                "name": "traced",
                "schedule": {"every": "weekly", "start": "2027-03-01T09:00:00"},
                "taskTemplate": {"title": "Traced"},
            },
        )
        assert created.status_code == 201, created.text
        # The relay published recurringtask.created to Dapr ...
        published = wait_for(
            "recurringtask.created published",
            lambda: [
                received.event
                for received in dapr.events("task-events")
                if received.event["type"] == "recurringtask.created"
                and received.event["subject"].endswith("traced")
            ],
        )
        event = published[0]
        # ... and Dapr delivers it to the subscriber (the API's activity consumer), twice.
        for _ in range(2):
            answer = api.sidecar().post("/events/task-events", json=event)
            assert answer.json() == {"status": "SUCCESS"}
        spans = wait_for(
            "the occurrence's reconcile span",
            lambda: (found := capture.spans()) and any(s.name == "reconcile Task" for s in found) and found,
        )
    finally:
        capture.capturing = False
        capture.exporter.clear()
        logging.getLogger().removeHandler(handler)
        consumer_log.setLevel(logging.NOTSET)

    request = next(s for s in spans if s.name == "POST /api/v1/recurring-tasks" and s.kind.name == "SERVER")
    trace_id = request.context.trace_id
    in_trace = {s.name for s in spans if s.context.trace_id == trace_id}
    assert {
        "POST /api/v1/recurring-tasks",  # the API
        "reconcile RecurringTask",  # the operator, continuing the annotation's context
        "postgresql transaction",  # the row and its outbox event
        "publish recurringtask.created",  # the relay
        "reconcile Task",  # the occurrence the operator created, in the same trace
        "consume recurringtask.created",  # the consumer, from the CloudEvent's traceparent
    } <= in_trace
    assert event["traceparent"].split("-")[1] == format(trace_id, "032x")

    # The consumer's log line about the duplicate: JSON, with the fields a log search needs.
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert records
    for record in records:
        assert set(logs.FIELDS) <= record.keys()
        assert record["service"] == "todo-tests"
    duplicate = next(r for r in records if "processed already" in r["event"])
    assert duplicate["event_id"] == event["id"]
    assert duplicate["user"] == ALICE
    assert duplicate["trace_id"] == format(trace_id, "032x")
    assert duplicate["level"] == "INFO"
