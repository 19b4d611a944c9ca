"""
Session fixtures: every chart scenario rendered once (one child process, see
rendering.py), each kustomize overlay rendered once, and one checkov run over all
of it (checkov takes seconds to start, so it runs once, not per file).
"""

from __future__ import annotations

import pathlib
import shutil

import pytest
import yaml

from tests.manifests import checks, rendering

CHART = rendering.CHART
SCENARIOS: dict[str, list[pathlib.Path]] = {
    "defaults": [],
    **{f"ci/{path.name}": [path] for path in sorted((CHART / "ci").glob("*.yaml"))},
    **{path.name: [path] for path in sorted(CHART.glob("values-*.yaml"))},
}
OVERLAYS = sorted(path.name for path in (rendering.KUSTOMIZE / "overlays").iterdir() if path.is_dir())
# Namespaces that exist before the chart is installed (those a scenario asks the operator to watch).
EXISTING_NAMESPACES = ("team-a", "team-b")
# Value sets that must be refused, each with a word the error must contain.
REFUSED: dict[str, tuple[dict[str, object], str]] = {
    "unknown-key": ({"operatr": {"replicas": 1}}, "operatr"),
    "replicas-without-peering": ({"operator": {"replicas": 2}}, "peering"),
    # Kopf finds its peering object by this name: it must be one Kubernetes accepts.
    "peering-name-not-a-name": (
        {"operator": {"peering": {"enabled": True, "name": "Todo_HA"}}},
        "/operator/peering/name",
    ),
    "relay-without-dapr": ({"relay": {"enabled": True}, "dapr": {"enabled": False}}, "dapr.enabled"),
    # Dapr jobs reach the operator through its sidecar: without Dapr no reminder would ever fire.
    "dapr-jobs-without-dapr": (
        {"reminders": {"mode": "dapr-jobs"}, "dapr": {"enabled": False}},
        "reminders.mode=dapr-jobs needs dapr.enabled",
    ),
    # The operator would fail to listen for job triggers on a port it already serves.
    "dapr-jobs-app-port-taken": (
        {"reminders": {"mode": "dapr-jobs", "jobs": {"appPort": 8080}}},
        "reminders.jobs.appPort (8080) is operator.healthPort's port too",
    ),
    "unknown-reminder-mode": ({"reminders": {"mode": "dapr"}}, "/reminders/mode"),
    # The way to choose a mode before reminders.mode: it would now hide the chart's own value.
    "reminder-mode-in-extra-env": (
        {"operator": {"extraEnv": [{"name": "TODO_REMINDER_DELIVERY", "value": "inline"}]}},
        "operator.extraEnv sets TODO_REMINDER_DELIVERY: set reminders.mode",
    ),
    "bad-service-type": ({"api": {"service": {"type": "ExternalName"}}}, "type"),
    "relay-batch-too-large": ({"relay": {"batchSize": 20000}}, "batchSize"),
    "recipient-domain-not-a-domain": ({"notify": {"recipientDomains": ["@example.com"]}}, "recipientDomains"),
    # The API refuses every delivery without Dapr's app token: a chart without one would lose the feed.
    "dapr-without-app-token": ({"dapr": {"appTokenSecret": ""}}, "dapr.appTokenSecret"),
    # KEDA scales the relay's own Deployment; the relay inside the operator has none to scale.
    "relay-autoscaling-without-relay": (
        {"relay": {"autoscaling": {"enabled": True}}},
        "relay.autoscaling.enabled needs relay.enabled",
    ),
    "relay-autoscaling-min-above-max": (
        {"relay": {"enabled": True, "autoscaling": {"enabled": True, "minReplicas": 6, "maxReplicas": 3}}},
        "relay.autoscaling.minReplicas (6) is above relay.autoscaling.maxReplicas (3)",
    ),
    "api-autoscaling-min-above-max": (
        {"api": {"autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 2}}},
        "api.autoscaling.minReplicas (4) is above api.autoscaling.maxReplicas (2)",
    ),
    "api-autoscaling-cpu-above-100": (
        {"api": {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": 150}}},
        "/api/autoscaling/targetCPUUtilizationPercentage",
    ),
    "relay-backlog-per-replica-zero": (
        {"relay": {"enabled": True, "autoscaling": {"enabled": True, "backlogPerReplica": 0}}},
        "/relay/autoscaling/backlogPerReplica",
    ),
}
# A workload checkov must flag (the checkov negative control): root, privileged, no limits.
BAD_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "default"},
    "spec": {"containers": [{"name": "bad", "image": "busybox", "securityContext": {"privileged": True}}]},
}


def _objects(value: list[rendering.Json] | str, name: str) -> list[rendering.Json]:
    if isinstance(value, str):
        pytest.fail(f"{name} did not render: {value}")
    return value


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("manifests")


@pytest.fixture(scope="session")
def chart_results(workdir: pathlib.Path) -> dict[str, list[rendering.Json] | str]:
    jobs = {name: rendering.load_values(CHART / "values.yaml", *files) for name, files in SCENARIOS.items()}
    jobs |= {
        f"refused:{name}": rendering.load_values(CHART / "values.yaml") | values
        for name, (values, _) in REFUSED.items()
    }
    results = rendering.render_charts(jobs, workdir=workdir, namespaces=EXISTING_NAMESPACES)
    base_values = rendering.load_values(CHART / "values.yaml", rendering.KUSTOMIZE_BASE / "values.yaml")
    results |= rendering.render_charts(
        {"kustomize-base": base_values}, workdir=workdir, release="todo-operator"
    )
    return results


@pytest.fixture(scope="session")
def chart_renders(chart_results: dict[str, list[rendering.Json] | str]) -> dict[str, list[rendering.Json]]:
    return {name: _objects(chart_results[name], name) for name in SCENARIOS}


@pytest.fixture(scope="session")
def kustomize_renders() -> dict[str, list[rendering.Json]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed (Debian package kubernetes-client; .ci/run installs it)")
    return {name: rendering.render_kustomize(rendering.KUSTOMIZE / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def checkov_failures(
    workdir: pathlib.Path,
    chart_renders: dict[str, list[rendering.Json]],
    kustomize_renders: dict[str, list[rendering.Json]],
) -> dict[str, list[rendering.Json]]:
    """Failed checkov checks by scanned file: one file per scenario, overlay, the Dockerfile, terraform."""
    if not checks.CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed in {checks.CHECKOV.parent.parent} (make checkov; make test does it)"
        )
    scan = workdir / "checkov"
    scan.mkdir(exist_ok=True)
    files: dict[str, pathlib.Path] = {}
    rendered = {f"chart {k}": v for k, v in chart_renders.items()} | {
        f"kustomize {k}": v for k, v in kustomize_renders.items()
    }
    rendered["negative control"] = [BAD_POD]
    for index, (name, objects) in enumerate(rendered.items()):
        path = scan / f"scan-{index}.yaml"
        path.write_text(yaml.safe_dump_all(checks.with_notify_jobs(objects), sort_keys=False))
        files[name] = path
    kube = checks.run_checkov(list(files.values()), frameworks=["kubernetes"])
    root = rendering.ROOT
    other = checks.run_checkov(
        [root / "Dockerfile", *sorted((root / "terraform").rglob("*.tf"))],
        frameworks=["dockerfile", "terraform"],
    )
    by_file: dict[str, list[rendering.Json]] = {name: [] for name in [*files, "Dockerfile", "terraform"]}
    paths = {str(path.name): name for name, path in files.items()}
    for failure in kube:
        by_file[paths[pathlib.Path(failure["file_path"]).name]].append(failure)
    for failure in other:
        by_file["Dockerfile" if failure["check_type"] == "dockerfile" else "terraform"].append(failure)
    return by_file
