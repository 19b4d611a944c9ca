"""CronJob delivery meets hostile text and a recipient nobody allowed: the notify pod's command, for real.

The operator schedules the reminder (a Job, its minute having come); the
Job's command runs here as a process of its own, as its pod would, against
the emulator, PostgreSQL and a real SMTP server. ``notify`` sends through the
same delivery code as the inline scheduler: these show it in that mode too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import kube_emulator as apiserver
from tests.kubeclient import KubeClient, condition
from tests.operator.test_reminders import jobs, scheduled, smtp, task
from todo_devstack.smtp import SmtpSink

pytestmark = pytest.mark.usefixtures("operator", "clock_at_real_time")
__all__ = ["smtp"]  # the fixture, shared with test_reminders


def _notify(
    kube: KubeClient, namespace: str, name: str, *, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    reminder = scheduled(kube, namespace, name)
    job = kube.wait_for("the immediate Job", lambda: jobs(kube, namespace).get(reminder["status"]["cronJob"]))
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return subprocess.run(
        [sys.executable, "-m", "todo_operator", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env(api_server: apiserver.ApiServerThread, database_url: str, smtp: SmtpSink) -> dict[str, str]:
    return {
        "TODO_DATABASE_URL": database_url,
        "TODO_KUBE_API_URL": api_server.url,
        "TODO_SMTP_PORT": str(smtp.port),
    }


def handled(kube: KubeClient, namespace: str, plural: str, name: str) -> None:
    """Wait until Kopf's handler of the object returned (it then stores the handled spec)."""

    def done() -> bool:
        found = kube.get(plural, namespace, name) or {}
        return "todo.dev/last-handled-configuration" in (found.get("metadata", {}).get("annotations") or {})

    kube.wait_for(f"the handler of {plural}/{name} to return", done)


def _soon() -> datetime:
    return datetime.now(tz=UTC) + timedelta(minutes=60, seconds=20)


def test_a_stored_title_with_a_line_break_is_sent_once_as_one_header(
    kube: KubeClient,
    namespace: str,
    smtp: SmtpSink,
    api_server: apiserver.ApiServerThread,
    operator_database_url: str,
) -> None:
    kube.create("tasks", namespace, task("rent", due_at=_soon(), reminders=[{"before": "1h"}]))
    scheduled(kube, namespace, "rent-before-1h")
    # The Task's handler reconciles its reminders again at its end (sync_task), saving the row
    # with the Task's title: only once it has returned does a row written by hand stay as written.
    handled(kube, namespace, "tasks", "rent")
    handled(kube, namespace, "reminders", "rent-before-1h")
    # As a row written before the CRD refused line breaks would hold it.
    with psycopg.connect(operator_database_url) as connection:
        connection.execute(
            "UPDATE reminders SET task_title = %s WHERE namespace = %s AND name = 'rent-before-1h'",
            ("Pay rent\r\nBcc: mallory@evil.example", namespace),
        )
    result = _notify(kube, namespace, "rent-before-1h", env=_env(api_server, operator_database_url, smtp))

    assert result.returncode == 0, result.stderr
    (message,) = smtp.messages
    assert smtp.envelope_recipients == [["alice@example.com"]]
    assert message["Bcc"] is None
    assert message["Subject"].startswith("Reminder: Pay rent Bcc: mallory@evil.example (due ")
    assert scheduled(kube, namespace, "rent-before-1h", phase="Sent")["status"]["attempts"] == 1


@pytest.mark.parametrize(
    ("to", "domains", "sent"),
    [
        ("ceo@othercompany.example", "", False),
        ("bob@example.com", "", False),
        ("bob@example.com", "example.com", True),
    ],
    ids=["outsider", "colleague-by-default", "colleague-allowed"],
)
def test_notify_sends_only_to_allowed_recipients(
    kube: KubeClient,
    namespace: str,
    smtp: SmtpSink,
    api_server: apiserver.ApiServerThread,
    operator_database_url: str,
    to: str,
    domains: str,
    sent: bool,
) -> None:
    kube.create("tasks", namespace, task("rent", due_at=_soon(), reminders=[]))
    reminder: dict[str, Any] = {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "Reminder",
        "metadata": {"name": "phish"},
        "spec": {"taskRef": {"name": "rent"}, "before": "1h", "to": to, "message": "Your account is locked"},
    }
    kube.create("reminders", namespace, reminder)
    env = _env(api_server, operator_database_url, smtp) | {"TODO_REMINDER_RECIPIENT_DOMAINS": domains}
    result = _notify(kube, namespace, "phish", env=env)

    if sent:
        assert result.returncode == 0, result.stderr
        assert smtp.envelope_recipients == [[to]]
        return
    assert result.returncode == 1, result
    assert f"recipient {to} is not allowed" in result.stdout
    assert smtp.messages == []
    failed = scheduled(kube, namespace, "phish", phase="Failed")
    assert failed["status"]["attempts"] == 0
    assert condition(failed["status"])["reason"] == "RecipientNotAllowed"
    assert "RecipientNotAllowed" in {event["reason"] for event in kube.events(namespace, "phish")}
