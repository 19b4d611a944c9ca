"""Negative controls: each check in checks.py flags a bad object (so a pass means something)."""

from __future__ import annotations

import copy

import yaml

from tests.manifests import checks, rendering

GOOD_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
PROBE = {"httpGet": {"path": "/healthz", "port": "http"}}
DEPLOYMENT: rendering.Json = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "web",
                        "image": "web:1",
                        "ports": [{"name": "http", "containerPort": 8000}],
                        "livenessProbe": PROBE,
                        "readinessProbe": PROBE,
                        "resources": {"requests": {"cpu": "1m"}, "limits": {"cpu": "1"}},
                        "securityContext": GOOD_CONTEXT,
                    }
                ],
            },
        },
    },
}


def _container(deployment: rendering.Json) -> rendering.Json:
    container: rendering.Json = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_good_deployment_passes() -> None:
    assert not checks.insecure_containers([DEPLOYMENT])
    assert not checks.missing_probes([DEPLOYMENT])
    errors, _ = checks.schema_errors([DEPLOYMENT], "1.31.0")
    assert not errors


def test_wildcard_rbac_is_flagged() -> None:
    role = {
        "kind": "ClusterRole",
        "metadata": {"name": "r"},
        "rules": [{"apiGroups": ["*"], "resources": ["pods"]}],
    }
    assert checks.wildcard_rbac([role])
    role["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]
    assert checks.wildcard_rbac([role])


def test_root_writable_or_capable_containers_are_flagged() -> None:
    for field, value in [
        ("runAsNonRoot", False),
        ("readOnlyRootFilesystem", False),
        ("allowPrivilegeEscalation", True),
        ("capabilities", {"drop": []}),
    ]:
        bad = copy.deepcopy(DEPLOYMENT)
        _container(bad)["securityContext"][field] = value
        assert checks.insecure_containers([bad]), field


def test_missing_probes_are_flagged() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    del _container(bad)["readinessProbe"]
    assert checks.missing_probes([bad])
    bad = copy.deepcopy(DEPLOYMENT)
    _container(bad)["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "nope"}}
    assert checks.missing_probes([bad])


def test_network_policy_selecting_no_pod_is_flagged() -> None:
    policy: rendering.Json = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "np"},
        "spec": {"podSelector": {"matchLabels": {"app": "other"}}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert checks.unselective_network_policies([DEPLOYMENT, policy])
    assert checks.unprotected_pods([DEPLOYMENT, policy])
    policy["spec"]["podSelector"] = {"matchLabels": {"app": "web"}}
    assert not checks.unselective_network_policies([DEPLOYMENT, policy])
    assert not checks.unprotected_pods([DEPLOYMENT, policy])


def test_schema_violations_are_flagged() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["replicas"] = "two"
    assert checks.schema_errors([bad], "1.37.0")[0]
    bad = copy.deepcopy(DEPLOYMENT)
    _container(bad)["imagePullPolicy"] = "Sometimes"
    bad["spec"]["unknownField"] = 1  # strict schemas reject unknown fields
    assert checks.schema_errors([bad], "1.31.0")[0]


SCALED_OBJECT: rendering.Json = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "relay", "namespace": "default"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "relay"},
        "minReplicaCount": 1,
        "maxReplicaCount": 4,
        "triggers": [
            {
                "type": "postgresql",
                "metadata": {"query": "SELECT 1", "targetQueryValue": "100"},
                "authenticationRef": {"name": "relay-database"},
            }
        ],
    },
}
TRIGGER_AUTHENTICATION: rendering.Json = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "TriggerAuthentication",
    "metadata": {"name": "relay-database", "namespace": "default"},
    "spec": {"secretTargetRef": [{"parameter": "connection", "name": "db", "key": "url"}]},
}


def test_the_good_keda_objects_pass() -> None:
    assert checks.schema_errors([SCALED_OBJECT, TRIGGER_AUTHENTICATION], "1.31.0") == ([], [])


def test_keda_schema_violations_are_flagged() -> None:
    """KEDA's kinds are checked against KEDA's CRDs, unknown fields refused (the API server would
    drop a misspelt one silently), and the CRD's CEL rules evaluated."""
    misspelt = copy.deepcopy(SCALED_OBJECT)
    misspelt["spec"]["minReplicaCont"] = misspelt["spec"].pop("minReplicaCount")
    untargeted = copy.deepcopy(SCALED_OBJECT)
    del untargeted["spec"]["scaleTargetRef"]
    # Trigger metadata is a map of strings: a number there is refused by the API server.
    number = copy.deepcopy(SCALED_OBJECT)
    number["spec"]["triggers"][0]["metadata"]["targetQueryValue"] = 100
    inverted = copy.deepcopy(SCALED_OBJECT)
    inverted["spec"]["minReplicaCount"] = 5  # above maxReplicaCount: the CRD's CEL rule
    unknown_kind = copy.deepcopy(SCALED_OBJECT)
    unknown_kind["spec"]["triggers"][0]["authenticationRef"]["kind"] = "SecretAuthentication"
    bad_metadata = copy.deepcopy(SCALED_OBJECT)
    bad_metadata["metadata"]["lables"] = {"app": "relay"}  # ObjectMeta, checked as any object's
    for bad, mentions in [
        (misspelt, "minReplicaCont"),
        (untargeted, "scaleTargetRef"),
        (number, "100"),
        (inverted, "minReplicaCount must be less than or equal to maxReplicaCount"),
        (unknown_kind, "SecretAuthentication"),
        (bad_metadata, "lables"),
    ]:
        errors, _ = checks.schema_errors([bad], "1.31.0")
        assert errors, mentions
        assert mentions in errors[0], errors
    authentication = copy.deepcopy(TRIGGER_AUTHENTICATION)
    del authentication["spec"]["secretTargetRef"][0]["key"]
    errors, _ = checks.schema_errors([authentication], "1.31.0")
    assert errors
    assert "'key' is a required property" in errors[0]


def test_crd_drift_is_flagged() -> None:
    crds = [
        obj for path in sorted(rendering.CRDS.glob("*.yaml")) for obj in [yaml.safe_load(path.read_text())]
    ]
    assert not checks.crd_differences(crds, rendering.CRDS)
    drifted = copy.deepcopy(crds)
    drifted[0]["spec"]["versions"][0]["served"] = False
    assert checks.crd_differences(drifted, rendering.CRDS)
    assert checks.crd_differences(crds[1:], rendering.CRDS)


def test_long_names_are_flagged() -> None:
    assert checks.long_names([{"kind": "Service", "metadata": {"name": "x" * 64}}])


def test_unlisted_checkov_failures_are_flagged() -> None:
    failure = {"check_id": "CKV_K8S_16", "resource": "Pod.default.bad", "file_path": "f"}
    assert checks.unskipped([failure], checks.load_checkov_skips())
    listed = {"check_id": "CKV_K8S_8", "resource": "Pod.todo.todo-todo-operator-test", "file_path": "f"}
    assert not checks.unskipped([listed], checks.load_checkov_skips())
