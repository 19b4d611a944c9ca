"""The real kubectl against the emulator, through a kubeconfig from ``write_kubeconfig``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

import kube_emulator as apiserver
from tests.packages.kube_emulator.conftest import HERE

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="the kubectl binary is not installed on this machine")

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
WIDGET = {
    "apiVersion": "example.dev/v1",
    "kind": "Widget",
    "metadata": {"name": "w1"},
    "spec": {"title": "Hello", "url": "https://example.dev", "size": 2},
}


@pytest.fixture(scope="module")
def server() -> Iterator[apiserver.ApiServerThread]:
    with apiserver.ApiServerThread() as running:  # the CRD comes through `kubectl apply`
        yield running


@pytest.fixture(scope="module")
def kubectl(server: apiserver.ApiServerThread, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    assert KUBECTL is not None

    def run(*args: str, stdin: Any = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        text = None if stdin is None else yaml.safe_dump(stdin)
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    run("apply", "-f", str(HERE / "widget-crd.yaml"))
    return run


@pytest.fixture(autouse=True)
def clean(kubectl: Kubectl) -> Iterator[None]:
    yield
    kubectl("delete", "widgets", "--all", "--wait=false")


def test_apply_creates_then_configures(kubectl: Kubectl, server: apiserver.ApiServerThread) -> None:
    assert "created" in kubectl("apply", "-f", "-", stdin=WIDGET).stdout
    changed = {**WIDGET, "spec": {**WIDGET["spec"], "title": "Changed"}}
    assert "configured" in kubectl("apply", "-f", "-", stdin=changed).stdout
    [obj] = server.objects("example.dev/v1/widgets", "default")
    assert obj["spec"]["title"] == "Changed"
    assert obj["metadata"]["generation"] == 2


def test_get_by_short_name_prints_printer_columns(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=WIDGET)
    header, row = kubectl("get", "wdg").stdout.splitlines()
    assert header.split() == ["NAME", "TITLE", "SIZE", "READY", "AGE"]
    assert row.split()[:3] == ["w1", "Hello", "2"]


def test_get_by_category(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=WIDGET)
    assert "w1" in kubectl("get", "gadgets").stdout


def test_get_as_yaml(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=WIDGET)
    obj = yaml.safe_load(kubectl("get", "widget", "w1", "-o", "yaml").stdout)
    assert obj["kind"] == "Widget"
    assert obj["spec"]["color"] == "green"


def test_patch_merge_and_validation_message(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=WIDGET)
    kubectl("patch", "wdg", "w1", "--type", "merge", "-p", '{"spec":{"color":"red"}}')
    result = kubectl("patch", "wdg", "w1", "--type", "merge", "-p", '{"spec":{"color":"pink"}}', check=False)
    assert result.returncode != 0
    assert 'spec.color: Unsupported value: "pink"' in result.stderr


def test_strategic_patch_on_a_builtin_kind(kubectl: Kubectl, server: apiserver.ApiServerThread) -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "cj"},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x:1"}]}
                    }
                }
            },
        },
    }
    kubectl("apply", "-f", "-", stdin=cronjob)
    kubectl("patch", "cronjob", "cj", "-p", '{"spec":{"suspend":true}}')
    [obj] = server.objects("batch/v1/cronjobs", "default")
    assert obj["spec"]["suspend"] is True
    assert obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == "x:1"


def test_describe_lists_events(kubectl: Kubectl, server: apiserver.ApiServerThread) -> None:
    kubectl("apply", "-f", "-", stdin=WIDGET)
    [obj] = server.objects("example.dev/v1/widgets", "default")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "w1.1", "namespace": "default"},
        "involvedObject": {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "name": "w1",
            "namespace": "default",
            "uid": obj["metadata"]["uid"],
        },
        "reason": "Tested",
        "message": "hello from the test",
        "type": "Normal",
        "count": 1,
    }
    kubectl("apply", "-f", "-", stdin=event)
    output = kubectl("describe", "wdg", "w1").stdout
    assert "Tested" in output
    assert "hello from the test" in output


def test_delete_waits_until_gone(kubectl: Kubectl, server: apiserver.ApiServerThread) -> None:
    kubectl("apply", "-f", "-", stdin=WIDGET)
    assert "deleted" in kubectl("delete", "wdg", "w1").stdout
    assert server.objects("example.dev/v1/widgets") == []


def test_protobuf_bodies_are_refused_with_a_clear_message(kubectl: Kubectl) -> None:
    """`kubectl create configmap|secret` send protobuf; the emulator speaks JSON only (documented)."""
    result = kubectl("create", "configmap", "cm", "--from-literal=a=b", check=False)
    assert result.returncode != 0
    assert "accepts JSON and YAML bodies only" in result.stderr
