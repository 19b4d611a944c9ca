"""The kubectl walkthrough of the README, with the real kubectl, our CRDs and the operator."""

from __future__ import annotations

import pathlib
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
    listing = kubectl("get", "rtask")
    header = listing.splitlines()[0].split()
    assert header[:6] == ["NAME", "TITLE", "NEXT", "DUE", "CURRENT", "PHASE"]
    assert any(line.startswith("weekly-review ") and current in line for line in listing.splitlines())
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
    columns = kubectl("get", "todo", "renew-passport").splitlines()
    assert columns[0].split()[:5] == ["NAME", "TITLE", "PRIORITY", "DUE", "PHASE"]
    assert "urgent" in columns[1]
