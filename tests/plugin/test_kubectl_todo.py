"""``kubectl todo`` run by the real kubectl (plugin discovery and completion are kubectl's own)
against the API emulator, with the operator making occurrences and reminders."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

import kube_emulator as apiserver
from tests.conftest import require_tools
from tests.kubeclient import KubeClient
from todo_devstack import postgres
from todo_operator.domain import occurrences, recurrence, resources

pytestmark = pytest.mark.usefixtures("operator")
ALICE = "alice@example.com"
BIN = pathlib.Path(sys.executable).parent  # where pip put kubectl-todo and kubectl_complete-todo

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(api_server: apiserver.ApiServerThread, tmp_path: pathlib.Path, namespace: str) -> Kubectl:
    """kubectl, with the test's kubeconfig (its namespace the test's) and the plugin on PATH."""
    require_tools("kubectl")
    config = yaml.safe_load(api_server.write_kubeconfig(tmp_path / "config").read_text())
    config["contexts"][0]["context"]["namespace"] = namespace
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    base = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),  # kubectl's discovery cache: not the real one
        "KUBECONFIG": str(tmp_path / "config"),
        "TZ": "Europe/Berlin",
    }

    def run(
        *args: str, owner: str | None = ALICE, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = base | ({"KUBECTL_TODO_OWNER": owner} if owner else {}) | env
        done = subprocess.run(
            ["kubectl", *args], env=environment, capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    return run


def wait_occurrences(kube: KubeClient, namespace: str, name: str, count: int) -> dict[str, Any]:
    status: dict[str, Any] = kube.wait_for_status(
        "recurringtasks", namespace, name, lambda s: s.get("occurrences") == count, what=f"occurrence {count}"
    )["status"]
    return status


def test_kubectl_finds_the_plugin(kubectl: Kubectl) -> None:
    listed = kubectl("plugin", "list")
    assert str(BIN / "kubectl-todo") in listed.stdout
    assert "kubectl todo [OPTIONS] COMMAND" in kubectl("todo", "--help").stdout


def test_a_recurring_task_from_add_to_done_skip_and_reopen(
    kubectl: Kubectl, kube: KubeClient, namespace: str
) -> None:
    made = kubectl("todo", "add", "Water the plants", "--every", "daily", "--due", "+1d", "--remind", "1h")
    assert made.stdout == "recurringtask.todo.dev/water-the-plants created\n"
    series = kube.get("recurringtasks", namespace, "water-the-plants")
    assert series is not None
    assert series["spec"]["schedule"]["timeZone"] == "Europe/Berlin"
    assert series["spec"]["taskTemplate"] == {
        "title": "Water the plants",
        "description": "",
        "owner": ALICE,
        "priority": "medium",
        "tags": [],
        "reminders": [{"before": "1h"}],
    }
    first = wait_occurrences(kube, namespace, "water-the-plants", 1)["currentTask"]

    listed = json.loads(kubectl("todo", "ls", "-o", "json").stdout)
    assert [item["metadata"]["name"] for item in listed["items"]] == [first]
    table = kubectl("todo", "ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "TITLE", "DUE", "PHASE", "PRIORITY", "SERIES"]
    assert table[1].startswith(first)
    assert "Water the plants" in table[1]
    assert "water-the-plants" in table[1]
    # Someone else's view: nothing of Alice's, unless asked for everyone's.
    assert "No tasks found." in kubectl("todo", "ls", owner="bob@example.com").stderr
    assert first in kubectl("todo", "ls", "--all-owners", owner="bob@example.com").stdout

    # `done` with the series' name completes its current occurrence; the next one follows.
    assert kubectl("todo", "done", "water-the-plants").stdout == f"task.todo.dev/{first} completed\n"
    second = wait_occurrences(kube, namespace, "water-the-plants", 2)["currentTask"]
    upcoming = kubectl("todo", "next").stdout.splitlines()
    assert upcoming[1].split()[0] == "water-the-plants"
    assert upcoming[1].split()[-1] == second
    assert kubectl("todo", "done", first).stdout == f"task.todo.dev/{first} is already completed\n"

    # Skip the current one: the series moves on, nothing recorded as done.
    skipped = kubectl("todo", "skip", second)
    assert (
        skipped.stdout
        == f"task.todo.dev/{second} skipped: water-the-plants moves on to its next occurrence\n"
    )
    third = wait_occurrences(kube, namespace, "water-the-plants", 3)
    assert third.get("lastCompletedAt") == kube.get("recurringtasks", namespace, "water-the-plants")[
        "status"
    ].get("lastCompletedAt")
    kube.wait_for("the skipped one gone", lambda: kube.get("tasks", namespace, second) is None)
    refused = kubectl("todo", "skip", first, check=False)
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        f"Error: task '{first}' is completed: only an open occurrence can be skipped",
    )

    assert kubectl("todo", "reopen", first).stdout == f"task.todo.dev/{first} reopened\n"
    reopened = kube.get("tasks", namespace, first)
    assert reopened is not None
    assert reopened["spec"]["completed"] is False

    # The preview is the engine's answer for the object's schedule, from its current occurrence.
    shown = json.loads(kubectl("todo", "preview", "water-the-plants", "--count", "3", "-o", "json").stdout)
    spec = resources.RecurringTaskSpec.model_validate(series["spec"])
    engine = recurrence.Recurrence.compile(occurrences.schedule_spec(spec.schedule))
    next_due = datetime.fromisoformat(third["nextDueAt"])
    assert shown == [moment.isoformat() for moment in engine.upcoming(next_due, count=3, inclusive=True)]


def test_one_off_tasks_today_overdue_and_a_snoozed_reminder(
    kubectl: Kubectl, kube: KubeClient, namespace: str
) -> None:
    kubectl(
        "todo", "add", "Pay rent", "--due", "+2h", "--priority", "high", "--tag", "home", "--remind", "1h"
    )
    kubectl("todo", "add", "Call Bob", "--due", "2026-01-01T09:00", "--name", "call-bob")
    rent = kube.get("tasks", namespace, "pay-rent")
    assert rent is not None
    due = datetime.fromisoformat(rent["spec"]["dueAt"])
    assert due.second == 0
    assert timedelta(minutes=118) <= due - datetime.now(tz=UTC) <= timedelta(minutes=120)
    # A wall-clock time is read in the user's zone (TZ here), and written with its offset.
    assert kube.get("tasks", namespace, "call-bob")["spec"]["dueAt"] == "2026-01-01T09:00:00+01:00"

    overdue = kubectl("todo", "ls", "--overdue", "-o", "name").stdout.split()
    assert overdue == ["task.todo.dev/call-bob"]
    assert "Overdue !" in kubectl("todo", "ls").stdout
    across = kubectl("todo", "ls", "-A").stdout.splitlines()
    assert across[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert {line.split()[0] for line in across[1:]} >= {namespace}
    wide = kubectl("todo", "ls", "-o", "wide").stdout
    assert "home" in wide
    assert ALICE in wide

    reminder = kube.wait_for(
        "the inline reminder made",
        lambda: next(iter(kube.list("reminders", namespace)), None),
    )["metadata"]["name"]
    before = datetime.now(tz=UTC)
    said = kubectl("todo", "snooze", reminder, "--for", "30m").stdout
    assert said.startswith(f"reminder.todo.dev/{reminder} snoozed until ")
    snoozed = kube.get("reminders", namespace, reminder)
    assert snoozed is not None
    assert "before" not in snoozed["spec"]
    at = datetime.fromisoformat(snoozed["spec"]["at"])
    assert before + timedelta(minutes=29) <= at <= datetime.now(tz=UTC) + timedelta(minutes=30)

    kubectl("todo", "done", "pay-rent")
    late = kubectl("todo", "snooze", reminder, check=False)
    assert (late.returncode, late.stderr.strip()) == (
        1,
        'Error: its task "pay-rent" is completed: there is nothing to remind of',
    )


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (("done", "nope"), 1, 'no task or recurring task named "nope" in namespace'),
        (("add", "x", "--due", "tomorrow"), 2, "'tomorrow' is not 2026-12-10T17:00"),
        (("add", "x", "--every", "daily"), 1, "a recurring task needs --due"),
        (("add", "x", "--every", "daily", "--rrule", "FREQ=DAILY", "--due", "+1d"), 1, "not both"),
        (
            ("add", "x", "--rrule", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "--due", "+1d"),
            1,
            "spec.schedule: the rule FREQ=YEARLY;BYMONTHDAY=30;BYMONTH=2 produces no occurrence",
        ),
        (("add", "x", "--remind", "1h"), 1, "reminders with 'before' need spec.dueAt"),
        (("add", "x\ty"), 1, "spec.title"),
        (("add", "x", "--interval", "2"), 1, "--interval goes with --every"),
        (("snooze", "nope"), 1, 'no reminder named "nope"'),
        (("snooze", "nope", "--for", "soon"), 2, "'soon' is not a duration"),
        (("--time-zone", "Mars/Olympus", "ls"), 2, "unknown time zone 'Mars/Olympus'"),
        (("frobnicate",), 2, "No such command 'frobnicate'"),
    ],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    kubectl: Kubectl, kube: KubeClient, namespace: str, args: tuple[str, ...], code: int, said: str
) -> None:
    done = kubectl("todo", *args, check=False)
    assert done.returncode == code, done.stderr
    assert said in done.stderr
    assert kube.list("tasks", namespace) == []
    assert kube.list("recurringtasks", namespace) == []


def test_who_you_are_unreachable_servers_and_names_in_use(
    kubectl: Kubectl, kube: KubeClient, namespace: str, tmp_path: pathlib.Path
) -> None:
    anonymous = kubectl("todo", "add", "x", owner=None, check=False)
    assert (anonymous.returncode, anonymous.stderr.strip()) == (
        1,
        "Error: who are you? pass --owner or set KUBECTL_TODO_OWNER to your e-mail address",
    )
    assert "showing every owner's tasks" in kubectl("todo", "ls", owner=None).stderr
    kubectl("todo", "--owner", "carol@example.com", "add", "Carol's", "--name", "carols", owner=None)
    assert kube.get("tasks", namespace, "carols")["spec"]["owner"] == "carol@example.com"

    again = kubectl("todo", "add", "Carol's again", "--name", "carols", check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == 'Error: tasks.todo.dev "carols" already exists'
    one_off = kubectl("todo", "skip", "carols", check=False)
    assert "not an occurrence of a recurring task" in one_off.stderr
    assert kube.get("tasks", namespace, "carols") is not None

    dead = tmp_path / "dead"
    apiserver.write_kubeconfig(f"http://127.0.0.1:{postgres.free_port()}", dead)
    unreachable = kubectl("todo", "--kubeconfig", str(dead), "ls", check=False)
    assert unreachable.returncode == 1
    assert "cannot reach the API server at http://127.0.0.1:" in unreachable.stderr


def test_kubectl_completes_verbs_names_and_flags(kubectl: Kubectl, kube: KubeClient, namespace: str) -> None:
    """kubectl (1.26+) runs kubectl_complete-todo by its plugin completion protocol."""
    kubectl("todo", "add", "Water the plants", "--every", "weekly", "--due", "+1d")
    current = wait_occurrences(kube, namespace, "water-the-plants", 1)["currentTask"]

    def complete(*words: str) -> list[str]:
        lines = kubectl("__complete", "todo", *words).stdout.splitlines()
        assert lines[-1] == ":4"  # no file names
        return [line.split("\t")[0] for line in lines[:-1]]

    assert {"ls", "add", "done", "reopen", "skip", "snooze", "next", "preview", "completion"} <= set(
        complete("")
    )
    assert complete("sk") == ["skip"]
    assert complete("done", "") == sorted([current, "water-the-plants"])
    assert complete("preview", "wat") == ["water-the-plants"]
    assert "--every" in complete("add", "x", "--ev")
    assert complete("add", "x", "--every", "") == ["daily", "weekly", "monthly", "yearly"]

    script = kubectl("todo", "completion", "bash").stdout
    registered = subprocess.run(
        ["bash", "-c", f"{script}\ncomplete -p kubectl-todo"], capture_output=True, text=True, check=True
    )
    assert "kubectl-todo" in registered.stdout
