"""``todo-operator demo`` as a person runs it: start, use with kubectl and curl, Ctrl-C, nothing left behind.

The README's walkthroughs run against the demo in test_readme.py; here: what
the demo prints and writes, the REST API's demo token, ``--keep`` against a
fresh start, and a clear refusal when a port is taken.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import socket
import subprocess
import time
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import require_tools
from tests.demo_runner import (
    PORTS,
    ROOT,
    Demo,
    assert_nothing_left,
    demo_environment,
    free_port_run,
    todo_operator_command,
)
from tests.packages.todo_devstack.test_postgres import deep_folder

KUBECTL = shutil.which("kubectl")


@pytest.fixture
def needs_kubectl() -> None:
    require_tools("kubectl")


RTASKS = "/apis/todo.dev/v1alpha1/namespaces/default/recurringtasks"
REMINDERS = "/apis/todo.dev/v1alpha1/namespaces/default/reminders"


def kubectl(demo: Demo, *args: str) -> str:
    assert KUBECTL is not None
    env = demo_environment(KUBECONFIG=str(demo.state_dir / "kubeconfig"), HOME=str(demo.state_dir.parent))
    return subprocess.run(
        [KUBECTL, *args], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def recurring_tasks(demo: Demo) -> dict[str, dict[str, Any]]:
    """The RecurringTasks in the emulator, by name (read over HTTP, as any client would)."""
    response = httpx.get(demo.api_url + RTASKS, timeout=10)
    response.raise_for_status()
    return {item["metadata"]["name"]: item for item in response.json()["items"]}


def wait_until_active(demo: Demo, count: int) -> dict[str, dict[str, Any]]:
    """Poll (with a deadline) until ``count`` RecurringTasks show phase Active."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = recurring_tasks(demo)
        if sum(1 for item in found.values() if item.get("status", {}).get("phase") == "Active") == count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} active RecurringTasks, got {json.dumps(found)[:2000]}")


def wait_for_reminder_of(demo: Demo, task_prefix: str) -> dict[str, Any]:
    """Poll (with a deadline) for the one Reminder on a task named ``task_prefix...`` with a fire time."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = httpx.get(demo.api_url + REMINDERS, timeout=10).json()["items"]
        found = [item for item in items if item["spec"]["taskRef"]["name"].startswith(task_prefix)]
        if len(found) == 1 and found[0].get("status", {}).get("fireAt"):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"expected one scheduled reminder on {task_prefix}*, got {found}")


def wait_for_activity(env: dict[str, str]) -> list[dict[str, Any]]:
    """Poll (with a deadline) the demo user's activity feed until it shows something."""
    items: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = httpx.get(
            env["API_URL"] + "/activity", headers={"Authorization": f"Bearer {env['TOKEN']}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if items:
            return items
        time.sleep(0.1)
    raise AssertionError("the demo user's activity feed stayed empty")


@pytest.mark.usefixtures("needs_kubectl")
def test_demo_prints_what_to_type_serves_kubectl_and_rest_and_stops_cleanly(tmp_path: pathlib.Path) -> None:
    state = deep_folder(tmp_path) / "demo"  # a clone anywhere: no path in it is too long
    with Demo(state_dir=state, port_base=free_port_run(), args=["--with-examples"], cwd=ROOT) as demo:
        printed = demo.output.splitlines()
        env = demo.env_file()
        # What a newcomer types next, both as the printed lines and as the file to `source`.
        assert f"  source {state / 'env'}" in printed
        assert env["KUBECONFIG"] == str(state / "kubeconfig")
        assert env["API_URL"] == f"http://127.0.0.1:{demo.port_base + 4}/api/v1"
        for name, value in env.items():
            assert f"  export {name}={value}" in printed
        assert any(line.startswith("  kubectl apply -f examples/try-a-reminder.yaml") for line in printed)
        assert f"E-mails land in {state / 'mail'}/" in demo.output

        listing = ""
        for _ in range(100):  # the operator opens the occurrences within moments
            listing = kubectl(demo, "get", "rtask")
            if listing.count("Active") == 4:
                break
            time.sleep(0.1)
        assert listing.count("Active") == 4, listing

        # The example made for trying reminders keeps its promise: an e-mail within two minutes of
        # being applied (a reminder whose minute passed less than the five-minute grace ago is sent at once).
        reminder = wait_for_reminder_of(demo, "stretch-break-")
        applied_at = datetime.fromisoformat(
            recurring_tasks(demo)["stretch-break"]["metadata"]["creationTimestamp"]
        )
        fire_at = datetime.fromisoformat(reminder["status"]["fireAt"])
        assert timedelta(minutes=-3) <= fire_at - applied_at <= timedelta(minutes=2), (applied_at, fire_at)

        # The token is alice's: the REST API shows her recurring tasks and not bob's.
        response = httpx.get(
            env["API_URL"] + "/recurring-tasks",
            headers={"Authorization": f"Bearer {env['TOKEN']}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        names = {item["name"] for item in response.json()["items"]}
        assert names == {"daily-standup", "weekly-review", "stretch-break"}

        # The relay's CloudEvents go through the Dapr double to the API's activity consumer.
        activity = wait_for_activity(env)
        assert any("stretch-break" in item["subject"] for item in activity), activity

        # --with-examples applies as kubectl apply does, so applying the files again is quiet.
        applied = subprocess.run(
            [str(KUBECTL), "apply", "-f", str(ROOT / "examples")],
            env=demo_environment(KUBECONFIG=env["KUBECONFIG"], HOME=str(tmp_path)),
            capture_output=True,
            text=True,
            check=True,
        )
        assert "last-applied-configuration" not in applied.stderr, applied.stderr
    assert demo.returncode == 0, demo.output
    assert "stopping ..." in demo.output
    assert "Dapr        http://127.0.0.1:" in demo.output
    assert_nothing_left(state_dir=state, port_base=demo.port_base)


@pytest.mark.usefixtures("needs_kubectl")
def test_keep_reuses_objects_database_and_mail_and_a_plain_run_starts_afresh(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "demo"
    port = free_port_run()
    with Demo(state_dir=state, port_base=port) as first:
        kubectl(first, "apply", "-f", str(ROOT / "examples" / "recurring-tasks.yaml"))
        before = wait_until_active(first, 3)
    assert first.returncode == 0, first.output
    (state / "mail").mkdir(exist_ok=True)
    (state / "mail" / "00001.eml").write_text("Subject: kept\n\nfrom an earlier run\n")

    with Demo(state_dir=state, port_base=port, args=["--keep"]) as kept:
        assert "kept        " in kept.output
        after = wait_until_active(kept, 3)
        # The same objects (uids tie them to their rows in PostgreSQL), no second first occurrence.
        assert {name: item["metadata"]["uid"] for name, item in after.items()} == {
            name: item["metadata"]["uid"] for name, item in before.items()
        }
        assert {item["status"]["occurrences"] for item in after.values()} == {1}
        # The operator goes on from the kept database: completing the occurrence opens the next one.
        current = after["weekly-review"]["status"]["currentTask"]
        kubectl(kept, "patch", "todo", current, "--type", "merge", "-p", '{"spec":{"completed":true}}')
        kubectl(kept, "wait", "rtask/weekly-review", "--for=jsonpath={.status.occurrences}=2")
        env = kept.env_file()
        history = httpx.get(
            env["API_URL"] + "/recurring-tasks/weekly-review/occurrences",
            headers={"Authorization": f"Bearer {env['TOKEN']}"},
            timeout=10,
        )
        occurrences = history.json()
        assert [item["occurrence"] for item in occurrences["past"]] == [1], history.text
        assert [item["occurrence"] for item in occurrences["current"]] == [2], history.text
    assert kept.returncode == 0, kept.output
    assert (state / "mail" / "00001.eml").exists()

    with Demo(state_dir=state, port_base=port) as fresh:
        assert recurring_tasks(fresh) == {}
        assert not (state / "mail" / "00001.eml").exists()
    assert fresh.returncode == 0, fresh.output
    assert_nothing_left(state_dir=state, port_base=port)


def test_a_port_in_use_is_refused_by_name_before_anything_starts(tmp_path: pathlib.Path) -> None:
    port = free_port_run()
    state = tmp_path / "demo"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + PORTS - 1))  # the REST API's port, the last of the run
        taken.listen()
        result = subprocess.run(
            [
                *todo_operator_command(),
                "demo",
                "--port-base",
                str(port),
                "--state-dir",
                str(state),
            ],
            env=demo_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"port {port + PORTS - 1} on 127.0.0.1 is in use" in result.stderr
    assert not (state / "postgres").exists()
