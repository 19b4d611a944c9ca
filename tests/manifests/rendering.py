"""
Rendering the deployment manifests offline: the Helm chart and the kustomize overlays.

There is no `helm template` in helm-sdkpy (the Helm v4 library this project uses),
so the chart is *installed* into the devstack API emulator with Helm's in-memory
release driver; the release then carries the rendered manifest and hooks.
Three things make that work, each a gap of the emulator worked around here:

* The emulator serves only the built-in kinds our operator touches. The other
  kinds the chart creates (Deployments, RBAC, NetworkPolicies, Ingresses,
  PodDisruptionBudgets, HorizontalPodAutoscalers, ServiceMonitors,
  ValidatingAdmissionPolicies and their bindings, KEDA's ScaledObjects and
  TriggerAuthentications) are served as stand-in CRDs that accept any body: the
  emulator stores them, kubernetes-validate (KEDA's: their CRDs in schemas/)
  checks them.
* client-go's WatchList (`sendInitialEvents`) waits for a bookmark the emulator
  never sends; `KUBE_FEATURE_WatchListClient=false` makes Helm list and watch.
  The Go runtime reads the environment the process started with, so rendering
  runs in a child process (``render_charts``, ``python -m tests.manifests.rendering``).
* Helm waits for pre-install hook Jobs to complete, and nothing runs Jobs in the
  emulator: a helper thread marks each new Job complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml

import kube_emulator as apiserver
from kube_emulator import discovery
from tests import ROOT

CHART = ROOT / "manifests" / "helm" / "todo-operator"
KUSTOMIZE = ROOT / "manifests" / "kustomize"
CRDS = ROOT / "crds"

Json = dict[str, Any]

# The Go runtime inside helm-sdkpy reads the environment the *process* started with
# (not later os.environ changes), so rendering runs in a child process started with it.
HELM_ENVIRONMENT = {"HELM_DRIVER": "memory", "KUBE_FEATURE_WatchListClient": "false"}


def _standin(group: str, kind: str, plural: str, *, namespaced: bool = True, version: str = "v1") -> Json:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


# Kinds the chart creates that the emulator does not serve itself.
STANDIN_CRDS: tuple[Json, ...] = (
    _standin("apps", "Deployment", "deployments"),
    _standin("rbac.authorization.k8s.io", "Role", "roles"),
    _standin("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
    _standin("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", namespaced=False),
    _standin("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _standin("networking.k8s.io", "NetworkPolicy", "networkpolicies"),
    _standin("networking.k8s.io", "Ingress", "ingresses"),
    _standin("policy", "PodDisruptionBudget", "poddisruptionbudgets"),
    _standin("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    _standin("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", version="v2"),
    _standin("keda.sh", "ScaledObject", "scaledobjects", version="v1alpha1"),
    _standin("keda.sh", "TriggerAuthentication", "triggerauthentications", version="v1alpha1"),
    _standin(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        namespaced=False,
    ),
    _standin(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        namespaced=False,
    ),
)


class RenderError(Exception):
    """The chart or an overlay could not be rendered."""


def _complete_jobs(server: apiserver.ApiServerThread, stop: threading.Event) -> None:
    """Play the Job controller: mark every new Job complete, so Helm's hooks finish."""
    while not stop.wait(0.05):
        for job in server.objects("batch/v1/jobs"):
            if job.get("status", {}).get("conditions"):
                continue
            meta = job["metadata"]
            body = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
            request = urllib.request.Request(
                f"{server.url}/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}/status",
                data=json.dumps(body).encode(),
                method="PATCH",
                headers={"Content-Type": "application/merge-patch+json"},
            )
            with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5):
                pass


def _post(url: str, path: str, body: Json) -> None:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def load_values(*files: pathlib.Path) -> Json:
    """Values files merged as Helm merges several -f files (maps deeply, the rest replaced)."""

    def merge(base: Json, override: Mapping[str, Any]) -> Json:
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged

    values: Json = {}
    for file in files:
        values = merge(values, yaml.safe_load(file.read_text()) or {})
    return values


@contextlib.contextmanager
def _kubernetes_version(version: str | None) -> Iterator[None]:
    """Let the emulator report another Kubernetes version (Helm's ``.Capabilities.KubeVersion``)."""
    if version is None:
        yield
        return
    saved = dict(discovery.SERVER_VERSION)
    major, minor = version.removeprefix("v").split(".")[:2]
    discovery.SERVER_VERSION.update(gitVersion=version, major=major, minor=minor)
    try:
        yield
    finally:
        discovery.SERVER_VERSION.clear()
        discovery.SERVER_VERSION.update(saved)


def render_chart(
    values: Json,
    *,
    workdir: pathlib.Path,
    release: str = "todo",
    namespace: str = "todo",
    chart: pathlib.Path = CHART,
    existing_namespaces: Sequence[str] = (),
    kubernetes_version: str | None = None,
) -> list[Json]:
    """Every object the chart makes with these values, hooks included (each hook once).

    ``existing_namespaces`` are created first, as they would exist in a real cluster
    (the namespaces an operator is told to watch, for instance). ``kubernetes_version``
    (e.g. ``v1.29.4``) is the version the cluster reports; by default the emulator's.
    """
    import helm_sdkpy  # only in the child process started with HELM_ENVIRONMENT

    if any(os.environ.get(name) != value for name, value in HELM_ENVIRONMENT.items()):
        raise RenderError(f"render_chart needs the process started with {HELM_ENVIRONMENT}")

    stop = threading.Event()
    with _kubernetes_version(kubernetes_version), apiserver.ApiServerThread(crds=STANDIN_CRDS) as server:
        kubeconfig = server.write_kubeconfig(workdir / f"kubeconfig-{release}")
        for name in existing_namespaces:
            _post(
                server.url,
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
        completer = threading.Thread(target=_complete_jobs, args=(server, stop), daemon=True)
        completer.start()
        try:
            config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=str(kubeconfig))
            install = helm_sdkpy.Install(config)
            try:
                result = asyncio.run(
                    install.run(
                        release, str(chart), values=values, wait=False, timeout=60, create_namespace=True
                    )
                )
            except helm_sdkpy.HelmError as error:
                raise RenderError(str(error)) from error
        finally:
            stop.set()
            completer.join()
    documents = [doc for doc in yaml.safe_load_all(result["manifest"]) if doc]
    documents += [yaml.safe_load(hook["manifest"]) for hook in result.get("hooks") or []]
    return documents


def render_kustomize(overlay: pathlib.Path) -> list[Json]:
    """`kubectl kustomize` of one directory (works offline)."""
    completed = subprocess.run(
        ["kubectl", "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if completed.returncode != 0:
        raise RenderError(completed.stderr.strip())
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


def render_charts(
    jobs: Mapping[str, Json],
    *,
    workdir: pathlib.Path,
    namespaces: Sequence[str] = (),
    release: str = "todo",
    kubernetes_version: str | None = None,
    chart: pathlib.Path = CHART,
) -> dict[str, list[Json] | str]:
    """Render several value sets in one child process: name -> objects, or the error text."""
    jobs = {
        name: {
            "values": values,
            "namespaces": list(namespaces),
            "release": release,
            "kubernetesVersion": kubernetes_version,
            "chart": str(chart),
        }
        for name, values in jobs.items()
    }
    request = workdir / "render-request.json"
    answer = workdir / "render-answer.json"
    request.write_text(json.dumps({"workdir": str(workdir), "jobs": jobs}))
    completed = subprocess.run(
        [sys.executable, "-m", "tests.manifests.rendering", str(request), str(answer)],
        cwd=ROOT,
        env={**os.environ, **HELM_ENVIRONMENT},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if completed.returncode != 0:
        raise RenderError(f"the rendering process failed:\n{completed.stderr[-4000:]}")
    rendered: dict[str, list[Json] | str] = json.loads(answer.read_text())
    return rendered


KUSTOMIZE_BASE = KUSTOMIZE / "base"
# Labels that only make sense for a Helm release.
_HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")


def kustomize_base_objects(objects: Sequence[Json]) -> list[Json]:
    """The chart's objects as plain manifests for GitOps: Helm-only labels dropped, the
    test pod left out, the migration hook turned into an Argo CD PreSync hook."""
    result = []
    for obj in objects:
        annotations = obj["metadata"].get("annotations", {})
        if annotations.get("helm.sh/hook") == "test":
            continue
        for holder in _label_holders(obj):
            for label in _HELM_ONLY_LABELS:
                holder.pop(label, None)
        if "helm.sh/hook" in annotations:
            for key in [key for key in annotations if key.startswith("helm.sh/hook")]:
                del annotations[key]
            annotations["argocd.argoproj.io/hook"] = "PreSync"
            annotations["argocd.argoproj.io/hook-delete-policy"] = "BeforeHookCreation,HookSucceeded"
        result.append(obj)
    return result


def _label_holders(obj: Json) -> list[Json]:
    holders = [obj["metadata"].get("labels", {})]
    template = obj.get("spec", {}).get("template", {})
    if isinstance(template, dict):
        holders.append(template.get("metadata", {}).get("labels", {}))
    return holders


def write_kustomize_base(workdir: pathlib.Path) -> pathlib.Path:
    """Regenerate manifests/kustomize/base/todo-operator.yaml from the chart."""
    values = load_values(CHART / "values.yaml", KUSTOMIZE_BASE / "values.yaml")
    rendered = render_charts({"base": values}, workdir=workdir, release="todo-operator")["base"]
    if isinstance(rendered, str):
        raise RenderError(rendered)
    target = KUSTOMIZE_BASE / "todo-operator.yaml"
    header = (
        "# Generated from the Helm chart (release todo-operator, base/values.yaml); do not edit.\n"
        "# Regenerate: .venv/bin/python -m tests.manifests.rendering --write-kustomize-base\n"
    )
    target.write_text(header + yaml.safe_dump_all(kustomize_base_objects(rendered), sort_keys=False))
    return target


def main(argv: list[str]) -> int:
    if argv == ["--write-kustomize-base"]:
        with tempfile.TemporaryDirectory() as scratch:
            print(write_kustomize_base(pathlib.Path(scratch)))
        return 0
    request = json.loads(pathlib.Path(argv[0]).read_text())
    workdir = pathlib.Path(request["workdir"])
    answer: dict[str, list[Json] | str] = {}
    for name, values in request["jobs"].items():
        try:
            answer[name] = render_chart(
                values["values"],
                workdir=workdir,
                release=values["release"],
                existing_namespaces=values["namespaces"],
                kubernetes_version=values.get("kubernetesVersion"),
                chart=pathlib.Path(values.get("chart", CHART)),
            )
        except RenderError as error:
            answer[name] = str(error)
    pathlib.Path(argv[1]).write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
