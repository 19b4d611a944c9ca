"""The kubectl walkthrough of the README, with the real kubectl, our CRDs and the operator."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
from collections.abc import Callable

import pytest

import kube_emulator as apiserver
from tests import ROOT
from tests.conftest import require_tools
from tests.kubeclient import KubeClient
from tests.operator.test_operator_loop import wait_current

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.usefixtures("operator", "needs_kubectl")


@pytest.fixture
def needs_kubectl() -> None:
    require_tools("kubectl")


Kubectl = Callable[..., str]
# A header's columns are three or more spaces apart; a name may hold one ("NEXT DUE").
_HEADER_COLUMN = re.compile(r"\S+(?: \S+)*")


def table(listing: str) -> list[dict[str, str]]:
    """The rows of `kubectl get`, each {column: cell}, cut where the header's columns start
    (an empty cell is blank, so splitting on whitespace would shift the cells after it)."""
    header, *rows = listing.splitlines()
    columns = [(match.group(), match.start()) for match in _HEADER_COLUMN.finditer(header)]
    ends = [*(start for _, start in columns[1:]), None]
    return [
        {name: row[start:end].strip() for (name, start), end in zip(columns, ends, strict=True)}
        for row in rows
    ]


@pytest.fixture
def kubectl(api_server: apiserver.ApiServerThread, tmp_path: pathlib.Path, namespace: str) -> Kubectl:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    assert KUBECTL is not None

    def run(*args: str, expect_failure: bool = False) -> str:
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig), "--namespace", namespace, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if expect_failure:
            assert result.returncode != 0, result.stdout
            return result.stderr
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    return run


def test_apply_get_complete_describe_delete(kubectl: Kubectl, kube: KubeClient, namespace: str) -> None:
    applied = kubectl("apply", "-f", str(ROOT / "examples" / "recurring-tasks.yaml"))
    assert "recurringtask.todo.dev/weekly-review created" in applied

    current = wait_current(kube, namespace, "weekly-review", occurrences=1)["status"]["currentTask"]
    rows = table(kubectl("get", "rtask"))
    assert list(rows[0]) == ["NAME", "TITLE", "NEXT DUE", "CURRENT", "READY", "PHASE", "REASON", "AGE"]
    [row] = [row for row in rows if row["NAME"] == "weekly-review"]
    assert row["CURRENT"] == current
    assert (row["READY"], row["PHASE"], row["REASON"]) == ("True", "Active", "Scheduled")
    assert current in kubectl("get", "todos")  # the category lists Tasks too

    kubectl("patch", "todo", current, "--type", "merge", "-p", '{"spec":{"completed":true}}')
    following = wait_current(kube, namespace, "weekly-review", occurrences=2)["status"]["currentTask"]
    assert kubectl("get", "rtask", "weekly-review", "-o", "jsonpath={.status.currentTask}") == following
    assert "OccurrenceCreated" in kubectl("describe", "rtask", "weekly-review")

    kubectl("delete", "rtask", "weekly-review")
    kube.wait_for(
        "the occurrences deleted with it",
        lambda: (
            not [
                task
                for task in kube.list("tasks", namespace)
                if task["metadata"]["name"] in {current, following}
            ]
        ),
    )


def test_kubectl_shows_the_field_at_fault(kubectl: Kubectl, tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "examples" / "task.yaml").read_text().replace("priority: urgent", "priority: huge")
    )
    error = kubectl("apply", "-f", str(bad), expect_failure=True)
    assert 'spec.priority: Unsupported value: "huge"' in error


def test_a_one_off_task(kubectl: Kubectl, kube: KubeClient, namespace: str) -> None:
    kubectl("apply", "-f", str(ROOT / "examples" / "task.yaml"))
    kube.wait_for_status("tasks", namespace, "renew-passport", lambda s: "phase" in s, what="a phase")
    [row] = table(kubectl("get", "todo", "renew-passport"))
    assert list(row) == ["NAME", "TITLE", "PRIORITY", "DUE", "READY", "PHASE", "REASON", "AGE"]
    assert (row["TITLE"], row["PRIORITY"], row["READY"]) == ("Renew passport", "urgent", "True")
    assert row["REASON"] == row["PHASE"]  # Open or Overdue, by the day the suite runs


def test_a_refused_schedule_is_visible_in_kubectl_get(
    kubectl: Kubectl, kube: KubeClient, namespace: str, tmp_path: pathlib.Path
) -> None:
    # February 30th passes the schema but never occurs: the operator refuses it (README).
    never = tmp_path / "never.yaml"
    never.write_text(
        "apiVersion: todo.dev/v1alpha1\n"
        "kind: RecurringTask\n"
        "metadata: {name: february-30}\n"
        "spec:\n"
        "  schedule: {rrule: 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30', start: '2026-01-01T09:00:00'}\n"
        "  taskTemplate: {title: Never due, owner: alice@example.com}\n"
    )
    kubectl("apply", "-f", str(never))
    kube.wait_for_status(
        "recurringtasks",
        namespace,
        "february-30",
        lambda status: any(c["type"] == "Ready" for c in status.get("conditions", [])),
        what="a Ready condition",
    )
    [row] = table(kubectl("get", "rtask", "february-30"))
    assert (row["READY"], row["PHASE"], row["REASON"]) == ("False", "", "InvalidSchedule")
