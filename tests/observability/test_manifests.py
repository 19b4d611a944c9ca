"""The Kubernetes manifests of observability/: Zipkin (locked down, probed, where the Dapr
sidecars and Grafana look for it) and the PodMonitor that scrapes the chart's Dapr sidecars."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.manifests import checks as manifest_checks
from tests.manifests import rendering
from tests.observability import checks

ZIPKIN_DIR = checks.OBSERVABILITY / "zipkin"
KUSTOMIZATION = checks.load_yaml(ZIPKIN_DIR / "kustomization.yaml")
ZIPKIN: list[rendering.Json] = [checks.load_yaml(ZIPKIN_DIR / name) for name in KUSTOMIZATION["resources"]]
PODMONITOR = checks.load_yaml(checks.OBSERVABILITY / "prometheus" / "dapr-sidecars-podmonitor.yaml")
DAPR_CONFIGURATION = checks.load_yaml(rendering.ROOT / "manifests" / "dapr" / "configuration.yaml")
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")


def _one(objects: Sequence[rendering.Json], kind: str) -> rendering.Json:
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels and the In / NotIn / Exists / DoesNotExist expressions)."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def zipkin_service_url() -> str:
    service = _one(ZIPKIN, "Service")
    (port,) = service["spec"]["ports"]
    return f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{port['port']}"


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_zipkin_matches_the_kubernetes_schemas(kubernetes_version: str) -> None:
    errors, warnings = manifest_checks.schema_errors(ZIPKIN, kubernetes_version)
    assert errors == []
    assert warnings == []


def test_zipkin_is_locked_down_and_probed() -> None:
    assert manifest_checks.insecure_containers(ZIPKIN) == []
    assert manifest_checks.missing_probes(ZIPKIN) == []
    (container,) = _one(ZIPKIN, "Deployment")["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"


def test_zipkin_runs_a_pinned_image_with_in_memory_storage() -> None:
    deployment = _one(ZIPKIN, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    repository, _, tag = container["image"].partition(":")
    assert repository == "openzipkin/zipkin"
    assert tag != "latest"
    assert tag.count(".") == 2, "pin a full version (major.minor.patch)"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["STORAGE_TYPE"] == "mem"
    assert int(env["MEM_MAX_SPANS"]) > 0
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_zipkin_objects_live_in_the_kustomization_namespace() -> None:
    assert {obj["metadata"].get("namespace", obj["metadata"]["name"]) for obj in ZIPKIN} == {
        KUSTOMIZATION["namespace"]
    }


def test_the_zipkin_service_selects_the_zipkin_pods() -> None:
    service, deployment = _one(ZIPKIN, "Service"), _one(ZIPKIN, "Deployment")
    pod = deployment["spec"]["template"]
    assert _selects({"matchLabels": service["spec"]["selector"]}, pod["metadata"]["labels"])
    assert _selects(deployment["spec"]["selector"], pod["metadata"]["labels"])
    port_names = {port["name"] for c in pod["spec"]["containers"] for port in c["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names


def test_dapr_and_grafana_find_zipkin_where_it_runs() -> None:
    url = zipkin_service_url()
    assert DAPR_CONFIGURATION["spec"]["tracing"]["zipkin"]["endpointAddress"] == f"{url}/api/v2/spans"
    (zipkin_source,) = [
        s for s in checks.load_yaml(checks.DATASOURCES)["datasources"] if s["type"] == "zipkin"
    ]
    assert zipkin_source["url"] == url


def _pod_labels(objects: Sequence[rendering.Json]) -> dict[str, dict[str, str]]:
    return {
        obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj["spec"]["template"]["metadata"][
            "labels"
        ]
        for obj in objects
        if obj["kind"] == "Deployment"
    }


@pytest.mark.parametrize(
    ("scenario", "with_sidecar"),
    [("defaults", {"operator", "api"}), ("relay", {"relay", "api"})],
    ids=["relay-in-operator", "relay-on-its-own"],
)
def test_the_podmonitor_scrapes_every_dapr_sidecar_of_the_chart(
    chart_renders: dict[str, list[rendering.Json]], scenario: str, with_sidecar: set[str]
) -> None:
    objects = chart_renders[scenario]
    deployments = [obj for obj in objects if obj["kind"] == "Deployment"]
    sidecars = {
        deployment["metadata"]["labels"]["app.kubernetes.io/component"]: deployment
        for deployment in deployments
        if deployment["spec"]["template"]["metadata"].get("annotations", {}).get("dapr.io/enabled") == "true"
    }
    assert set(sidecars) == with_sidecar
    selector = PODMONITOR["spec"]["selector"]
    selected = {component for component, labels in _pod_labels(objects).items() if _selects(selector, labels)}
    assert selected >= set(sidecars), "a Dapr sidecar nobody scrapes"
    (endpoint,) = PODMONITOR["spec"]["podMetricsEndpoints"]
    # The Dapr injector names the sidecar's metrics port "dapr-metrics" (SidecarMetricsPortName).
    assert endpoint["port"] == "dapr-metrics"
    for component, deployment in sidecars.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["dapr.io/enable-metrics"] == "true"
        port = int(annotations["dapr.io/metrics-port"])
        # The chart's NetworkPolicy lets scrapers reach that port.
        (policy,) = [
            obj
            for obj in objects
            if obj["kind"] == "NetworkPolicy"
            and obj["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
            == component
        ]
        ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])}
        assert port in ingress_ports


# --- negative controls ---------------------------------------------------------------------------


def test_a_loosened_zipkin_is_reported() -> None:
    loose = copy.deepcopy(ZIPKIN)
    deployment = _one(loose, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    del container["readinessProbe"]
    del container["resources"]
    assert any("root file system" in p for p in manifest_checks.insecure_containers(loose))
    assert any("resource requests" in p for p in manifest_checks.insecure_containers(loose))
    assert any("readinessProbe" in p for p in manifest_checks.missing_probes(loose))


def test_the_selector_helper_tells_apart() -> None:
    selector = PODMONITOR["spec"]["selector"]
    labels = {"app.kubernetes.io/name": "todo-operator", "app.kubernetes.io/component": "api"}
    assert _selects(selector, labels)
    assert not _selects(selector, {**labels, "app.kubernetes.io/component": "migrations"})
    assert not _selects(selector, {**labels, "app.kubernetes.io/name": "other"})
