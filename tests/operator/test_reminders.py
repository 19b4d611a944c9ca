"""Reminders with the default CronJob delivery: objects, CronJobs, notify, cancellation, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import kube_emulator as apiserver
from tests.faults.lifecycle.stack import CountingSmtpSink
from tests.kubeclient import ApiError, KubeClient, condition
from todo_devstack.smtp import SmtpSink
from todo_operator.domain import timing

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def task(
    name: str, *, due_at: datetime | None, reminders: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Renew passport",
        "owner": "alice@example.com",
        "reminders": reminders,
        **spec,
    }
    if due_at is not None:
        body["dueAt"] = due_at.isoformat()
    return {"apiVersion": "todo.dev/v1alpha1", "kind": "Task", "metadata": {"name": name}, "spec": body}


def cronjobs(kube: KubeClient, namespace: str) -> dict[str, dict[str, Any]]:
    items = kube._check(kube._http.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs"))["items"]
    return {item["metadata"]["name"]: item for item in items}


def jobs(kube: KubeClient, namespace: str) -> dict[str, dict[str, Any]]:
    items = kube._check(kube._http.get(f"/apis/batch/v1/namespaces/{namespace}/jobs"))["items"]
    return {item["metadata"]["name"]: item for item in items}


def scheduled(kube: KubeClient, namespace: str, name: str, phase: str = "Scheduled") -> dict[str, Any]:
    return kube.wait_for_status("reminders", namespace, name, lambda s: s.get("phase") == phase, what=phase)


def test_a_task_with_reminders_gets_one_cronjob_each(kube: KubeClient, namespace: str) -> None:
    due = (datetime.now(tz=UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    at = due - timedelta(days=1)
    kube.create(
        "tasks", namespace, task("passport", due_at=due, reminders=[{"before": "1h"}, {"at": at.isoformat()}])
    )

    before = scheduled(kube, namespace, "passport-before-1h")
    assert datetime.fromisoformat(before["status"]["fireAt"]) == due - timedelta(hours=1)
    (owner,) = before["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Task", "passport")
    scheduled(kube, namespace, f"passport-at-{at:%Y%m%dt%H%M}")

    built = kube.wait_for(
        "two CronJobs", lambda: (found := cronjobs(kube, namespace)) and len(found) == 2 and found
    )
    cron = built[timing.cronjob_name("passport-before-1h")]
    fire = due - timedelta(hours=1)
    spec = cron["spec"]
    assert spec["schedule"] == f"{fire.minute} {fire.hour} {fire.day} {fire.month} *"
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 300
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["notify", "--reminder", f"{namespace}/passport-before-1h"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "todo-operator-notify"
    assert cron["metadata"]["ownerReferences"][0]["kind"] == "Reminder"


def test_moving_the_due_time_moves_the_cronjob(kube: KubeClient, namespace: str) -> None:
    due = (datetime.now(tz=UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    kube.create("tasks", namespace, task("passport", due_at=due, reminders=[{"before": "1h"}]))
    scheduled(kube, namespace, "passport-before-1h")

    later = due + timedelta(days=1)
    kube.patch("tasks", namespace, "passport", {"spec": {"dueAt": later.isoformat()}})
    fire = later - timedelta(hours=1)
    kube.wait_for_status(
        "reminders",
        namespace,
        "passport-before-1h",
        lambda s: s.get("fireAt") and datetime.fromisoformat(s["fireAt"]) == fire,
        what="the new fire time",
    )
    kube.wait_for(
        "the CronJob moved",
        lambda: (
            cronjobs(kube, namespace)[timing.cronjob_name("passport-before-1h")]["spec"]["schedule"]
            == timing.cron_schedule(fire)
        ),
    )


def test_removing_an_entry_removes_its_reminder(kube: KubeClient, namespace: str) -> None:
    due = datetime.now(tz=UTC) + timedelta(days=2)
    kube.create(
        "tasks", namespace, task("passport", due_at=due, reminders=[{"before": "1h"}, {"before": "2h"}])
    )
    scheduled(kube, namespace, "passport-before-2h")
    kube.patch("tasks", namespace, "passport", {"spec": {"reminders": [{"before": "1h"}]}})
    kube.wait_for(
        "the 2h reminder gone", lambda: kube.get("reminders", namespace, "passport-before-2h") is None
    )
    assert kube.get("reminders", namespace, "passport-before-1h") is not None


def test_completing_the_task_cancels_its_reminders(kube: KubeClient, namespace: str) -> None:
    due = datetime.now(tz=UTC) + timedelta(days=2)
    kube.create("tasks", namespace, task("passport", due_at=due, reminders=[{"before": "1h"}]))
    scheduled(kube, namespace, "passport-before-1h")
    kube.wait_for("the CronJob", lambda: cronjobs(kube, namespace))

    kube.patch("tasks", namespace, "passport", {"spec": {"completed": True}})
    cancelled = scheduled(kube, namespace, "passport-before-1h", phase="Cancelled")
    assert condition(cancelled["status"])["reason"] == "Cancelled"
    kube.wait_for("the CronJob deleted", lambda: not cronjobs(kube, namespace))


def test_a_reminder_made_for_a_completed_task_is_recorded_cancelled(
    kube: KubeClient, namespace: str, operator_database_url: str
) -> None:
    """Found by the model-based test: the object ended Cancelled, but no row was ever written (the
    cancel had nothing to update), so the REST list and the record disagreed with the cluster."""
    due = datetime.now(tz=UTC) + timedelta(days=2)
    kube.create("tasks", namespace, task("passport", due_at=due, reminders=[], completed=True))
    kube.wait_for_status("tasks", namespace, "passport", lambda s: s.get("phase") == "Completed", what="done")
    kube.create(
        "reminders",
        namespace,
        {"metadata": {"name": "late-idea"}, "spec": {"taskRef": {"name": "passport"}, "before": "1h"}},
    )
    cancelled = scheduled(kube, namespace, "late-idea", phase="Cancelled")
    assert condition(cancelled["status"])["message"] == "TaskCompleted"
    with psycopg.connect(operator_database_url) as connection:
        row = connection.execute(
            "SELECT phase, fire_at FROM reminders WHERE namespace = %s AND name = 'late-idea'", (namespace,)
        ).fetchone()
        events = connection.execute(
            "SELECT event_type FROM outbox WHERE subject = %s ORDER BY id", (f"{namespace}/late-idea",)
        ).fetchall()
    assert row == ("Cancelled", due - timedelta(hours=1))
    assert events == [("reminder.cancelled",)]
    assert cronjobs(kube, namespace) == {}


@pytest.mark.usefixtures("clock_at_real_time")
def test_a_reminder_whose_time_has_come_runs_a_job_and_notify_sends_it(
    kube: KubeClient,
    namespace: str,
    smtp: SmtpSink,
    api_server: apiserver.ApiServerThread,
    operator_database_url: str,
) -> None:
    due = datetime.now(tz=UTC) + timedelta(minutes=60, seconds=20)
    kube.create("tasks", namespace, task("passport", due_at=due, reminders=[{"before": "1h"}]))
    reminder = scheduled(kube, namespace, "passport-before-1h")
    job_name = reminder["status"]["cronJob"]
    job = kube.wait_for("the immediate Job", lambda: jobs(kube, namespace).get(job_name))
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]

    # What the Job's pod runs, here as a process of its own.
    env = {
        **os.environ,
        "TODO_DATABASE_URL": operator_database_url,
        "TODO_KUBE_API_URL": api_server.url,
        "TODO_SMTP_PORT": str(smtp.port),
        "TODO_SMTP_FROM": "todo@example.com",
    }
    for _ in range(2):  # a second run (a retried Job) sends nothing more
        result = subprocess.run(
            [sys.executable, "-m", "todo_operator.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    (message,) = smtp.messages
    assert message["To"] == "alice@example.com"
    assert message["Subject"].startswith("Reminder: Renew passport (due ")
    sent = scheduled(kube, namespace, "passport-before-1h", phase="Sent")
    assert sent["status"]["attempts"] == 1
    assert condition(sent["status"])["reason"] == "Sent"
    assert "Sent" in {event["reason"] for event in kube.events(namespace, "passport-before-1h")}
    kube.wait_for("the Job's CronJob gone", lambda: not cronjobs(kube, namespace))
    with psycopg.connect(operator_database_url) as connection:
        assert connection.execute(
            "SELECT reminder_sent FROM tasks WHERE namespace = %s AND name = 'passport'", (namespace,)
        ).fetchone() == (True,)


def test_notify_pods_run_again_and_at_once_stay_within_the_attempt_budget(
    kube: KubeClient, namespace: str, api_server: apiserver.ApiServerThread, operator_database_url: str
) -> None:
    """F12 in CronJob mode: every pod of a reminder shares one attempt budget, counted in PostgreSQL.

    The layers here: notify's own SMTP retries (``TODO_REMINDER_RETRIES``), the
    Job's ``backoffLimit`` (0: Kubernetes adds none), and more pods for the same
    reminder than one - a CronJob run again, a Job re-created by hand, two
    overlapping. SMTP refuses everything; the pod's command is run as a process,
    twice at once and once more after.
    """
    due = datetime.now(tz=UTC) + timedelta(minutes=60, seconds=20)
    kube.create("tasks", namespace, task("visa", due_at=due, reminders=[{"before": "1h"}]))
    reminder = scheduled(kube, namespace, "visa-before-1h")
    job = kube.wait_for("the immediate Job", lambda: jobs(kube, namespace).get(reminder["status"]["cronJob"]))
    assert job["spec"]["backoffLimit"] == 0
    command = [
        sys.executable,
        "-m",
        "todo_operator",
        *job["spec"]["template"]["spec"]["containers"][0]["args"],
    ]
    refusal = "451 4.3.0 Mailbox temporarily unavailable"
    with CountingSmtpSink() as sink:
        sink.fail_next(refusal, times=30)
        env = {
            **os.environ,
            "TODO_DATABASE_URL": operator_database_url,
            "TODO_KUBE_API_URL": api_server.url,
            "TODO_SMTP_PORT": str(sink.port),
            "TODO_SMTP_FROM": "todo@example.com",
            "TODO_REMINDER_RETRIES": "2",  # 3 attempts in all
            "TODO_REMINDER_RETRY_FIRST_SECONDS": "0.2",
            "TODO_REMINDER_RETRY_CAP_SECONDS": "0.4",
        }
        overlapping = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [(pod.communicate(timeout=60), pod.returncode) for pod in overlapping]
        later = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        offered, accepted = sink.attempts, list(sink.messages)

    assert offered == 3, outputs
    assert accepted == []
    codes = sorted(code for _, code in outputs)
    assert codes in ([0, 1], [1, 1]), outputs  # one failed the budget out (or both shared it)
    assert any("after 3 attempt(s)" in out for (out, _), code in outputs if code == 1), outputs
    assert (later.returncode, "nothing to do" in later.stdout) == (0, True), later
    failed = scheduled(kube, namespace, "visa-before-1h", phase="Failed")
    assert failed["status"]["attempts"] == 3
    assert condition(failed["status"])["reason"] == "DeliveryFailed"
    with psycopg.connect(operator_database_url) as connection:
        dead = connection.execute(
            "SELECT attempts FROM dead_letters WHERE reminder_uid = %s", (failed["metadata"]["uid"],)
        ).fetchall()
    assert dead == [(3,)]


@pytest.mark.parametrize(
    ("reminders", "due", "field"),
    [
        ([{"before": "-1h"}], True, "spec.reminders[0].before"),
        ([{"before": "soon"}], True, "spec.reminders[0].before"),
        ([{"at": "2026-12-09T18:00:00"}], True, "spec.reminders[0].at"),
        ([{"before": "1h"}], False, "spec.reminders"),
    ],
    ids=["negative", "not-a-duration", "at-without-zone", "before-without-due"],
)
def test_bad_reminders_are_refused_naming_the_field(
    kube: KubeClient, namespace: str, reminders: list[dict[str, Any]], due: bool, field: str
) -> None:
    manifest = task(
        "bad", due_at=datetime.now(tz=UTC) + timedelta(days=1) if due else None, reminders=reminders
    )
    with pytest.raises(ApiError) as refused:
        kube.create("tasks", namespace, manifest)
    assert refused.value.code == 422
    assert field in {cause["field"] for cause in refused.value.status["details"]["causes"]}


def test_a_reminder_with_a_bad_address_is_refused(kube: KubeClient, namespace: str) -> None:
    manifest = {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "Reminder",
        "metadata": {"name": "r"},
        "spec": {"taskRef": {"name": "x"}, "before": "1h", "to": "not an address"},
    }
    with pytest.raises(ApiError) as refused:
        kube.create("reminders", namespace, manifest)
    assert "spec.to" in {cause["field"] for cause in refused.value.status["details"]["causes"]}


def test_a_reminder_for_a_missing_task_fails_readably(kube: KubeClient, namespace: str) -> None:
    kube.create(
        "reminders",
        namespace,
        {"metadata": {"name": "orphan"}, "spec": {"taskRef": {"name": "nowhere"}, "before": "1h"}},
    )
    failed = scheduled(kube, namespace, "orphan", phase="Failed")
    assert condition(failed["status"])["reason"] == "TaskNotFound"
    assert failed["status"]["lastError"] == "task 'nowhere' not found"


def test_cronjobs_can_run_in_one_shared_namespace() -> None:
    from todo_operator.operator.reminders import NotifyJob, cronjob

    reminder = {"metadata": {"name": "passport-before-1h", "namespace": "team-a", "uid": "u-1"}}
    shared = cronjob(
        reminder=reminder, fire_at=datetime(2026, 12, 9, 17, 0, tzinfo=UTC), job=NotifyJob(namespace="todo")
    )
    assert shared["metadata"]["namespace"] == "todo"
    assert shared["metadata"]["name"] == "team-a-passport-before-1h-mail"
    assert shared["metadata"]["ownerReferences"] == []  # cannot cross namespaces: the finalizer cleans up
    assert shared["metadata"]["labels"]["todo.dev/reminder-namespace"] == "team-a"
    own = cronjob(reminder=reminder, fire_at=datetime(2026, 12, 9, 17, 0, tzinfo=UTC), job=NotifyJob())
    assert own["metadata"]["namespace"] == "team-a"
    assert own["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_a_deployment_owned_job_template_is_filled_in(tmp_path: Any) -> None:
    from todo_operator.operator.reminders import NotifyJob, immediate_job, load_job_template

    path = tmp_path / "template.yaml"
    path.write_text(
        "metadata: {labels: {app: notify}}\n"
        "spec:\n  backoffLimit: 2\n  template:\n    metadata: {labels: {app: notify}}\n"
        "    spec:\n      restartPolicy: Never\n      containers:\n        - name: notify\n"
        "          args: [notify]\n          envFrom: [{secretRef: {name: smtp}}]\n"
    )
    job = NotifyJob(
        image="registry.example/todo:1.2.3", namespace="todo", template=load_job_template(str(path))
    )
    reminder = {"metadata": {"name": "r", "namespace": "team-a", "uid": "u"}}
    spec = immediate_job(reminder=reminder, job=job, now=datetime(2026, 12, 9, 17, 0, tzinfo=UTC))["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/todo:1.2.3"
    assert container["args"] == ["notify", "--reminder", "team-a/r"]
    assert container["envFrom"] == [{"secretRef": {"name": "smtp"}}]
    assert spec["backoffLimit"] == 2

    path.write_text("spec: {}\n")
    with pytest.raises(ValueError, match="not a JobTemplateSpec"):
        load_job_template(str(path))


def test_a_reminder_a_person_made_follows_its_task(kube: KubeClient, namespace: str) -> None:
    due = (datetime.now(tz=UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    kube.create("tasks", namespace, task("passport", due_at=due, reminders=[]))
    kube.create(
        "reminders",
        namespace,
        {
            "metadata": {"name": "extra"},
            "spec": {"taskRef": {"name": "passport"}, "before": "2h", "message": "Photo!"},
        },
    )
    scheduled(kube, namespace, "extra")
    later = due + timedelta(days=1)
    kube.patch("tasks", namespace, "passport", {"spec": {"dueAt": later.isoformat()}})
    kube.wait_for_status(
        "reminders",
        namespace,
        "extra",
        lambda s: s.get("fireAt") and datetime.fromisoformat(s["fireAt"]) == later - timedelta(hours=2),
        what="moved with the task",
    )
    kube.patch("tasks", namespace, "passport", {"spec": {"completed": True}})
    scheduled(kube, namespace, "extra", phase="Cancelled")
