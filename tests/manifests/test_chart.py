"""The Helm chart and the kustomize overlays, rendered offline and checked object by object."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from kopf._cogs.structs import references

from tests.manifests import checks, conftest, rendering

TARGETS = [f"chart {name}" for name in conftest.SCENARIOS] + [
    f"kustomize {name}" for name in conftest.OVERLAYS
]
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")


@pytest.fixture(params=TARGETS)
def target(
    request: pytest.FixtureRequest,
    chart_renders: dict[str, list[rendering.Json]],
    kustomize_renders: dict[str, list[rendering.Json]],
) -> tuple[str, list[rendering.Json]]:
    source, name = request.param.split(" ", 1)
    objects = chart_renders[name] if source == "chart" else kustomize_renders[name]
    return request.param, objects


def test_helm_lint_passes() -> None:
    # helm-sdkpy's Lint tells whether the chart is clean, not why (its message is lost).
    code = (
        "import asyncio, helm_sdkpy, sys; "
        "r = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(sys.argv[1])); print(r)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, str(rendering.CHART)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_objects_match_the_kubernetes_schemas(
    target: tuple[str, list[rendering.Json]], kubernetes_version: str
) -> None:
    _, objects = target
    errors, warnings = checks.schema_errors(checks.with_notify_jobs(objects), kubernetes_version)
    assert not errors
    # Only custom resources may lack a schema: ServiceMonitor, and Kopf's peering objects (their
    # CRDs are the chart's crds/, which the real `helm install` of each render applied first).
    custom = ("ServiceMonitor", "kopf.dev/v1 KopfPeering", "kopf.dev/v1 ClusterKopfPeering")
    assert all(any(kind in warning for kind in custom) for warning in warnings), warnings


def test_rbac_has_no_wildcards(target: tuple[str, list[rendering.Json]]) -> None:
    assert not checks.wildcard_rbac(target[1])


def test_containers_are_locked_down(target: tuple[str, list[rendering.Json]]) -> None:
    assert not checks.insecure_containers(checks.with_notify_jobs(target[1]))


def test_deployments_have_http_probes(target: tuple[str, list[rendering.Json]]) -> None:
    assert not checks.missing_probes(target[1])


def test_network_policies_select_the_chart_pods(target: tuple[str, list[rendering.Json]]) -> None:
    objects = target[1]
    assert not checks.unselective_network_policies(objects)
    if any(obj["kind"] == "NetworkPolicy" for obj in objects):
        assert not checks.unprotected_pods(objects)


def test_names_and_labels_fit_in_63_characters(target: tuple[str, list[rendering.Json]]) -> None:
    assert not checks.long_names(target[1])


def test_checkov_finds_nothing_unexplained(
    target: tuple[str, list[rendering.Json]], checkov_failures: dict[str, list[rendering.Json]]
) -> None:
    assert not checks.unskipped(checkov_failures[target[0]], checks.load_checkov_skips())


def test_every_checkov_skip_has_a_reason() -> None:
    for skip in checks.load_checkov_skips():
        assert skip["check"].startswith("CKV"), skip
        assert len(skip.get("reason", "")) > 20, skip


def test_chart_crds_equal_the_generated_crds(chart_renders: dict[str, list[rendering.Json]]) -> None:
    assert not checks.crd_differences(chart_renders["defaults"], rendering.CRDS)


def test_crds_are_kept_on_uninstall(chart_renders: dict[str, list[rendering.Json]]) -> None:
    crds = [obj for obj in chart_renders["defaults"] if obj["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 3
    assert all(crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for crd in crds)


@pytest.mark.parametrize("name", sorted(conftest.REFUSED))
def test_bad_values_are_refused(name: str, chart_results: dict[str, list[rendering.Json] | str]) -> None:
    result = chart_results[f"refused:{name}"]
    assert isinstance(result, str), f"{name} rendered, but must be refused"
    assert conftest.REFUSED[name][1] in result


def test_operator_runs_one_active_replica(chart_renders: dict[str, list[rendering.Json]]) -> None:
    operator = _deployment(chart_renders["defaults"], "operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"]["type"] == "Recreate"
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TODO_STANDALONE"] == "true"
    peering = _deployment(chart_renders["ci/namespaced-peering-values.yaml"], "operator")
    env = {e["name"]: e.get("value") for e in peering["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["TODO_STANDALONE"], env["TODO_NAMESPACES"]) == ("false", "team-a,team-b")


def test_operator_rbac_is_namespaced_when_namespaces_are_given(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    objects = chart_renders["ci/namespaced-peering-values.yaml"]
    roles = {
        (o["kind"], o["metadata"].get("namespace")) for o in objects if o["kind"] in ("Role", "ClusterRole")
    }
    assert {("Role", "team-a"), ("Role", "team-b")} <= roles
    cluster_rules = [r for o in objects if o["kind"] == "ClusterRole" for r in o["rules"]]
    assert all("todo.dev" not in rule["apiGroups"] for rule in cluster_rules)
    assert all("namespaces" not in rule["resources"] for rule in cluster_rules)


def test_secrets_are_referenced_never_inlined(chart_renders: dict[str, list[rendering.Json]]) -> None:
    for name, objects in chart_renders.items():
        assert not [o for o in objects if o["kind"] == "Secret"], name
        for _, _, spec in checks.pod_templates(checks.with_notify_jobs(objects)):
            for container in spec["containers"]:
                for variable in container.get("env", []):
                    if variable["name"] == "TODO_DATABASE_URL":
                        assert "secretKeyRef" in variable["valueFrom"], name


def test_dapr_annotations(chart_renders: dict[str, list[rendering.Json]]) -> None:
    api = _deployment(chart_renders["defaults"], "api")["spec"]["template"]["metadata"]["annotations"]
    assert api["dapr.io/enabled"] == "true"
    assert (api["dapr.io/app-id"], api["dapr.io/app-port"], api["dapr.io/config"]) == (
        "todo-api",
        "8000",
        "todo-tracing",
    )
    operator = _deployment(chart_renders["defaults"], "operator")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert operator["dapr.io/app-id"] == "todo-operator"
    assert "dapr.io/app-port" not in operator
    minimal = _deployment(chart_renders["ci/minimal-values.yaml"], "operator")["spec"]["template"]["metadata"]
    assert "dapr.io/enabled" not in minimal.get("annotations", {})


def test_event_deliveries_to_the_api_carry_dapr_app_token(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    # Dapr's contract: the sidecar reads the key `token` of the Secret named by the annotation and
    # sends it as the dapr-api-token header; the API compares it with TODO_API_DAPR_APP_TOKEN.
    api = _deployment(chart_renders["defaults"], "api")["spec"]["template"]
    secret = api["metadata"]["annotations"]["dapr.io/app-token-secret"]
    assert secret == "todo-dapr-app-token"
    (container,) = api["spec"]["containers"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["TODO_API_DAPR_APP_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "token"}
    for name, objects in chart_renders.items():
        for deployment in (o for o in objects if o["kind"] == "Deployment"):
            template = deployment["spec"]["template"]
            annotations = template["metadata"].get("annotations", {})
            names = {v["name"] for c in template["spec"]["containers"] for v in c.get("env", [])}
            # Both or neither: a token on one side only refuses (or accepts) every delivery.
            assert ("dapr.io/app-token-secret" in annotations) == ("TODO_API_DAPR_APP_TOKEN" in names), name
            if "dapr.io/app-token-secret" in annotations:
                assert annotations["dapr.io/enabled"] == "true", name


def test_ingress_has_tls_redirect_and_issuer(chart_renders: dict[str, list[rendering.Json]]) -> None:
    (ingress,) = [o for o in chart_renders["ci/full-values.yaml"] if o["kind"] == "Ingress"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert ingress["spec"]["tls"][0]["hosts"] == ["todo.example.org"]
    # Only the REST API is published; /events/* and /dapr/* are for the pod's own sidecar.
    assert [path["path"] for path in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/api/"]


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    (job,) = [o for o in chart_renders["defaults"] if o["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate", "up"]
    assert "dapr.io/enabled" not in job["spec"]["template"]["metadata"].get("annotations", {})


def test_kustomize_base_is_generated_from_the_current_chart(
    chart_results: dict[str, list[rendering.Json] | str],
) -> None:
    rendered = chart_results["kustomize-base"]
    assert not isinstance(rendered, str), rendered
    committed = [
        d for d in yaml.safe_load_all((rendering.KUSTOMIZE_BASE / "todo-operator.yaml").read_text()) if d
    ]
    assert committed == rendering.kustomize_base_objects(rendered), (
        "manifests/kustomize/base is stale: regenerate with"
        " .venv/bin/python -m tests.manifests.rendering --write-kustomize-base"
    )


def _deployment(objects: list[rendering.Json], component: str) -> rendering.Json:
    (deployment,) = [
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return deployment


def test_every_component_gets_the_same_log_and_trace_settings(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    def environments(objects: list[rendering.Json]) -> dict[str, dict[str, str | None]]:
        return {
            f"{kind}/{container['name']}": {e["name"]: e.get("value") for e in container.get("env", [])}
            for kind, _, spec in checks.pod_templates(checks.with_notify_jobs(objects))
            for container in spec["containers"]
            if container["name"] in ("operator", "relay", "api", "notify")
        }

    traced = environments(chart_renders["ci/full-values.yaml"])
    assert len(traced) == 4, traced.keys()
    for where, env in traced.items():
        assert env["TODO_LOG_FORMAT"] == "json", where
        assert env["TODO_ZIPKIN_ENDPOINT"] == "http://zipkin.observability:9411/api/v2/spans", where
        assert env["TODO_TRACE_SAMPLE_RATIO"] == "1", where
    # No collector configured: nothing is exported, and no egress to one is opened.
    for where, env in environments(chart_renders["defaults"]).items():
        assert "TODO_ZIPKIN_ENDPOINT" not in env, where

    def notify_egress_ports(objects: list[rendering.Json]) -> set[int]:
        (policy,) = [
            o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("notify")
        ]
        return {port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", [])}

    # The notify pod has no Dapr sidecar: it reaches Zipkin only when our spans are exported.
    assert 9411 in notify_egress_ports(chart_renders["ci/full-values.yaml"])
    assert 9411 not in notify_egress_ports(chart_renders["defaults"])


def test_rbac_covers_what_the_reminder_code_does(chart_renders: dict[str, list[rendering.Json]]) -> None:
    """Each verb the code uses on a real cluster (the emulator has no RBAC to catch a missing one)."""

    def granted(component: str) -> set[tuple[str, str]]:
        return {
            (resource, verb)
            for role in chart_renders["defaults"]
            if role["kind"] in ("Role", "ClusterRole") and component in role["metadata"]["name"]
            for rule in role["rules"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }

    # The operator moves a CronJob when its reminder's due time moves (reminders.py _ensure_trigger).
    assert ("cronjobs", "patch") in granted("-operator-jobs")
    # The notify Job posts the "Sent" Event and removes its one-shot CronJob (report()).
    notify = granted("-notify")
    assert {("events", "create"), ("cronjobs", "delete"), ("reminders/status", "patch")} <= notify
    assert ("cronjobs", "create") not in notify


def test_whoever_sends_reminders_gets_the_recipient_domains(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    """Inline delivery sends from the operator, CronJob delivery from notify pods: both enforce the list."""

    def domains(objects: list[rendering.Json]) -> dict[str, str | None]:
        return {
            container["name"]: {e["name"]: e.get("value") for e in container["env"]}.get(
                "TODO_REMINDER_RECIPIENT_DOMAINS"
            )
            for _, _, spec in checks.pod_templates(checks.with_notify_jobs(objects))
            for container in spec["containers"]
            if container["name"] in ("operator", "notify")
        }

    assert domains(chart_renders["defaults"]) == {"operator": "", "notify": ""}
    assert domains(chart_renders[FULL]) == {"operator": "example.org,*", "notify": "example.org,*"}


# --- the outbox relay as a Deployment of its own (relay.enabled; on in ci/full-values.yaml) -------------

FULL = "ci/full-values.yaml"


def _env(deployment: rendering.Json) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def _relay_service_account(objects: list[rendering.Json]) -> rendering.Json:
    name = _deployment(objects, "relay")["spec"]["template"]["spec"]["serviceAccountName"]
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == name]
    return account


def test_relay_runs_alone_with_the_operator_settings(chart_renders: dict[str, list[rendering.Json]]) -> None:
    relay = _deployment(chart_renders[FULL], "relay")
    (container,) = relay["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "relay"
    assert relay["spec"]["strategy"]["type"] == "RollingUpdate"
    env = _env(relay)
    assert (env["TODO_RELAY_BATCH_SIZE"], env["TODO_METRICS_PORT"], env["TODO_PUBSUB_NAME"]) == (
        "1000",
        "9090",
        "pubsub",
    )
    # The same image, database and telemetry settings as the operator.
    operator = _deployment(chart_renders[FULL], "operator")
    assert container["image"] == operator["spec"]["template"]["spec"]["containers"][0]["image"]
    shared = ("TODO_DATABASE_URL", "TODO_DATABASE_POOL_SIZE", "TODO_LOG_FORMAT", "TODO_ZIPKIN_ENDPOINT")
    operator_env = {e["name"]: e for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    relay_env = {e["name"]: e for e in container["env"]}
    assert {name: relay_env.get(name) for name in shared} == {name: operator_env[name] for name in shared}


def test_relay_has_no_kubernetes_credentials(chart_renders: dict[str, list[rendering.Json]]) -> None:
    objects = chart_renders[FULL]
    relay = _deployment(objects, "relay")
    account = _relay_service_account(objects)
    assert account["automountServiceAccountToken"] is False
    assert relay["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    bound = [
        o["metadata"]["name"]
        for o in objects
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
        for subject in o.get("subjects") or []
        if subject["kind"] == "ServiceAccount" and subject["name"] == account["metadata"]["name"]
    ]
    assert not bound


def test_relay_publishes_through_its_own_sidecar(chart_renders: dict[str, list[rendering.Json]]) -> None:
    annotations = _deployment(chart_renders[FULL], "relay")["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["dapr.io/enabled"], annotations["dapr.io/app-id"]) == ("true", "todo-relay")
    # No token in the pod: the sidecar's built-in Kubernetes secret store could not start.
    assert annotations["dapr.io/disable-builtin-k8s-secret-store"] == "true"


def test_operator_stops_relaying_when_the_relay_runs_alone(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    operator = _deployment(chart_renders[FULL], "operator")
    assert _env(operator)["TODO_DAPR_ENABLED"] == "false"
    annotations = operator["spec"]["template"]["metadata"].get("annotations", {})
    assert not [key for key in annotations if key.startswith("dapr.io/")]


def test_relay_is_off_by_default(chart_renders: dict[str, list[rendering.Json]]) -> None:
    objects = chart_renders["defaults"]
    components = {o["metadata"].get("labels", {}).get("app.kubernetes.io/component") for o in objects}
    assert "relay" not in components
    assert _env(_deployment(objects, "operator"))["TODO_DAPR_ENABLED"] == "true"


def test_relay_network_policy_allows_no_api_server_and_no_smtp(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    objects = chart_renders[FULL]
    values = rendering.load_values(rendering.CHART / "values.yaml", rendering.CHART / FULL)
    labels = _deployment(objects, "relay")["spec"]["template"]["metadata"]["labels"]
    policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and all(labels.get(k) == v for k, v in o["spec"]["podSelector"]["matchLabels"].items())
    ]
    # A policy of the relay's own (the others select every pod of the release).
    assert [p for p in policies if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")]
    egress = [rule for p in policies for rule in p["spec"].get("egress", [])]
    ports = {port["port"] for rule in egress for port in rule.get("ports", [])}
    np = values["networkPolicy"]
    assert not ports & {*np["apiServer"]["ports"], values["notify"]["smtpPort"]}, ports
    assert {np["database"]["port"], np["dapr"]["kafkaPort"], 53} <= ports
    for rule in egress:
        if not rule.get("ports"):
            # Every port: only towards selected namespaces and pods, never an address range, never anywhere.
            assert rule.get("to"), rule
            assert all("ipBlock" not in peer for peer in rule["to"]), rule
    ingress = [rule for p in policies for rule in p["spec"].get("ingress", [])]
    assert {port["port"] for rule in ingress for port in rule["ports"]} == {
        values["relay"]["metricsPort"],
        9091,
    }
    assert all(rule["from"] == np["metrics"]["from"] for rule in ingress)


def test_relay_is_scraped_like_the_operator(chart_renders: dict[str, list[rendering.Json]]) -> None:
    objects = chart_renders[FULL]
    monitors = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in objects
        if o["kind"] == "ServiceMonitor"
    }
    selector = monitors["relay"]["spec"]["selector"]["matchLabels"]
    (service,) = [
        o
        for o in objects
        if o["kind"] == "Service" and all(o["metadata"]["labels"].get(k) == v for k, v in selector.items())
    ]
    assert service["spec"]["selector"] == selector
    assert monitors["relay"]["spec"]["endpoints"][0]["port"] == "metrics"
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]


def _secret_keys_read(objects: list[rendering.Json]) -> dict[str, set[str]]:
    """Secret name -> the keys the rendered objects read from it ("*" for envFrom: every key),
    also through the templates the chart hands the operator in ConfigMaps (reminder Jobs)."""
    read: dict[str, set[str]] = {}
    embedded = [
        yaml.safe_load(text)
        for item in objects
        if item.get("kind") == "ConfigMap"
        for name, text in (item.get("data") or {}).items()
        if name.endswith((".yaml", ".yml"))
    ]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(reference := node.get("secretKeyRef"), dict):
                read.setdefault(reference["name"], set()).add(reference["key"])
            if isinstance(reference := node.get("secretRef"), dict):
                read.setdefault(reference["name"], set()).add("*")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk([*objects, *embedded])
    return read


def test_the_secrets_the_readme_creates_are_the_ones_the_chart_reads(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    """The README's `helm install` on a new cluster: every Secret and key it creates is read,
    and every Secret the chart reads with its defaults is created."""
    readme = (rendering.ROOT / "README.md").read_text()
    created = {
        name: set(re.findall(r"--from-literal=([A-Za-z_-]+)=", line))
        for name, line in re.findall(r"create secret generic (\S+) (.*)", readme)
    }
    read = _secret_keys_read(chart_renders["defaults"])
    assert set(created) == set(read)
    for name, keys in created.items():
        assert keys <= read[name] or read[name] == {"*"}, f"{name}: {keys} not read ({read[name]})"


def _peerings(objects: list[rendering.Json]) -> set[tuple[str, str | None, str]]:
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        for o in objects
        if o["apiVersion"].startswith("kopf.dev/")
    }


def test_peering_ships_the_object_kopf_looks_for(chart_renders: dict[str, list[rendering.Json]]) -> None:
    """Kopf finds its peering object by kind and name (kopf.references, the selectors it watches):
    cluster-wide a ClusterKopfPeering, namespaced a KopfPeering in each watched namespace. The
    renders are real `helm install`s, so the kopf.dev kinds resolved: Helm installed crds/ first."""
    assert _peerings(chart_renders["defaults"]) == set()
    assert _peerings(chart_renders["ci/full-values.yaml"]) == {("ClusterKopfPeering", None, "todo-operator")}
    assert _peerings(chart_renders["ci/namespaced-peering-values.yaml"]) == {
        ("KopfPeering", "team-a", "todo-operator-ha"),
        ("KopfPeering", "team-b", "todo-operator-ha"),
    }


def test_the_peering_crds_are_the_ones_kopf_uses() -> None:
    """Kopf's own selectors (what its peering watches) match the kinds crds/ defines, and no others."""
    crds = [
        doc for doc in yaml.safe_load_all((conftest.CHART / "crds" / "kopf-peering.yaml").read_text()) if doc
    ]
    served = {}
    for crd in crds:
        spec = crd["spec"]
        (version,) = spec["versions"]
        resource = references.Resource(
            group=spec["group"],
            version=version["name"],
            plural=spec["names"]["plural"],
            kind=spec["names"]["kind"],
            singular=spec["names"]["singular"],
            namespaced=spec["scope"] == "Namespaced",
        )
        assert crd["metadata"]["name"] == f"{resource.plural}.{resource.group}"
        # Kopf writes each replica's entry under status, through the main resource.
        assert "subresources" not in version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        served[resource.kind] = resource
    assert references.CLUSTER_PEERINGS_K.check(served["ClusterKopfPeering"])
    assert not served["ClusterKopfPeering"].namespaced
    assert references.NAMESPACED_PEERINGS_K.check(served["KopfPeering"])
    assert served["KopfPeering"].namespaced
    assert not references.CLUSTER_PEERINGS_K.check(served["KopfPeering"])
