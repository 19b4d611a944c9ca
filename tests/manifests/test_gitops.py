"""examples/gitops: what a team puts in Git to run todo-operator with Argo CD or Flux.

The Argo CD health check runs in a real Lua 5.1 runtime (lupa; Argo CD runs gopher-lua,
a Lua 5.1) against statuses in the shape the operator writes (each one validated by the
models the CRDs are generated from); the chart values of both tools are rendered by helm,
which refuses a key the chart does not know; the team's tasks are valid resources.
"""

from __future__ import annotations

import pathlib
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from lupa import lua51

from tests import ROOT
from tests.manifests import rendering
from todo_operator.domain import conditions, crds, resources

GITOPS = ROOT / "examples" / "gitops"
HEALTH = GITOPS / "argocd" / "health.lua"
NOW = datetime(2026, 12, 3, 9, tzinfo=UTC)
STATUS_MODELS = {kind.kind: kind.status for kind in crds.KINDS}
SPEC_MODELS = {kind.kind: kind.spec for kind in crds.KINDS}


def _ready(status: str, reason: str, message: str = "", *, phase: str | None = None) -> list[dict[str, Any]]:
    """The conditions as the operator writes them (its own domain.conditions.readiness)."""
    written = conditions.readiness(
        [], ready=status == "True", reason=reason, message=message, now=NOW, generation=1, phase=phase
    )
    return [condition.model_dump(mode="json", by_alias=True) for condition in written]


def _object(kind: str, *, generation: int = 1, status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "team-a", "generation": generation},
    }
    if status is not None:
        STATUS_MODELS[kind].model_validate(status)  # the shape the operator writes
        body["status"] = status
    return body


CASES = [
    ("a new object", _object("Task"), "Progressing", "Waiting for the operator to reconcile it"),
    (
        "an edit the operator has not seen",
        _object("Task", generation=2, status={"phase": "Open", "observedGeneration": 1,
                                              "conditions": _ready("True", "Open")}),
        "Progressing",
        "Waiting for the operator to see generation 2",
    ),
    (
        "an open task",
        _object("Task", status={"phase": "Open", "observedGeneration": 1,
                                "conditions": _ready("True", "Open")}),
        "Healthy",
        "Open",
    ),
    (
        "a refused task",
        _object("Task", status={"observedGeneration": 1,
            "conditions": _ready("False", "InvalidSpec", "spec.dueAt: is in the year 0")}),
        "Degraded",
        "InvalidSpec: spec.dueAt: is in the year 0",
    ),
    (
        "a refused schedule",
        _object("RecurringTask", status={"observedGeneration": 1,
            "conditions": _ready("False", "InvalidSchedule", "produces no occurrence")}),
        "Degraded",
        "InvalidSchedule: produces no occurrence",
    ),
    (
        "an active schedule",
        _object("RecurringTask", status={"phase": "Active", "observedGeneration": 1, "occurrences": 3,
                                         "conditions": _ready("True", "Active", "next due 2026-12-07")}),
        "Healthy",
        "Active: next due 2026-12-07",
    ),
    (
        "a reminder of an invalid task",
        _object("Reminder", status={"phase": "Pending", "observedGeneration": 1,
            "conditions": _ready("False", "InvalidTask", "task 't' is invalid")}),
        "Degraded",
        "InvalidTask: task 't' is invalid",
    ),
    (
        "a reminder that failed",
        _object("Reminder", status={"phase": "Failed", "observedGeneration": 1,
            "conditions": _ready("False", "TaskNotFound", "task 't' not found", phase="Failed")}),
        "Degraded",
        "TaskNotFound: task 't' not found",
    ),
    (
        "a reminder on its way",
        _object("Reminder", status={"phase": "Pending", "observedGeneration": 1,
            "conditions": _ready("False", "Pending")}),
        "Progressing",
        "Pending",
    ),
    (
        "a reminder sent",
        _object("Reminder", status={"phase": "Sent", "observedGeneration": 1,
            "conditions": _ready("True", "Sent", "sent at 2026-12-03T09:00:00+00:00")}),
        "Healthy",
        "Sent: sent at 2026-12-03T09:00:00+00:00",
    ),
]  # fmt: skip


def argocd_health(script: str, body: dict[str, Any]) -> tuple[str, str]:
    """Run a health script as Argo CD does: ``obj`` is the object, the script returns ``hs``."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, body)
    answer = runtime.execute(script)
    return str(answer["status"]), str(answer["message"])


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({key: _to_lua(runtime, item) for key, item in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, item) for item in value])
    return value


@pytest.mark.parametrize(("case", "body", "status", "message"), CASES, ids=[case[0] for case in CASES])
def test_argocd_health_follows_ready_and_the_observed_generation(
    case: str, body: dict[str, Any], status: str, message: str
) -> None:
    assert argocd_health(HEALTH.read_text(), body) == (status, message)


def test_the_health_check_would_catch_a_script_that_ignores_the_generation() -> None:
    careless = HEALTH.read_text().replace("observed < generation", "false")
    stale = CASES[1][1]
    assert argocd_health(careless, stale)[0] == "Healthy", "the control: a stale object passes as healthy"


def test_argocd_cm_installs_the_health_check_for_every_kind() -> None:
    config = yaml.safe_load((GITOPS / "argocd" / "argocd-cm.yaml").read_text())
    assert config["data"] == {
        f"resource.customizations.health.{resources.GROUP}_{kind.kind}": HEALTH.read_text()
        for kind in crds.KINDS
    }


def _documents(path: pathlib.Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def test_the_chart_values_of_both_tools_render(tmp_path: pathlib.Path) -> None:
    chart = rendering.ROOT / "manifests" / "helm" / "todo-operator"
    version = yaml.safe_load((chart / "Chart.yaml").read_text())["version"]
    [application] = [
        a for a in _documents(GITOPS / "argocd" / "applications.yaml") if a["spec"]["source"].get("chart")
    ]
    flux = {d["kind"]: d for d in _documents(GITOPS / "flux" / "todo-operator.yaml")}
    assert (
        application["spec"]["source"]["targetRevision"]
        == flux["OCIRepository"]["spec"]["ref"]["tag"]
        == version
    )
    jobs = {}
    for tool, values in (
        ("argocd", application["spec"]["source"]["helm"]["valuesObject"]),
        ("flux", flux["HelmRelease"]["spec"]["values"]),
    ):
        (tmp_path / f"{tool}.yaml").write_text(yaml.safe_dump(values))
        jobs[tool] = rendering.load_values(chart / "values.yaml", tmp_path / f"{tool}.yaml")
    results = rendering.render_charts(jobs, workdir=tmp_path)
    assert {name: type(result).__name__ for name, result in results.items()} == {
        "argocd": "list",
        "flux": "list",
    }
    # The controller that applies the tasks folder may name their owners (the admission policy).
    appliers = {
        "argocd": "system:serviceaccount:argocd:argocd-application-controller",
        "flux": "system:serviceaccount:flux-system:kustomize-controller",
    }
    for tool, user in appliers.items():
        assert jobs[tool]["admissionPolicy"]["trustedUsers"] == [user]
        assert user in yaml.safe_dump(results[tool]), f"{tool}: the admission policy does not name {user}"


def test_the_teams_tasks_are_valid_resources() -> None:
    objects = [o for path in sorted((GITOPS / "tasks").glob("*.yaml")) for o in _documents(path)]
    assert {o["kind"] for o in objects} == {"Task", "RecurringTask"}
    for item in objects:
        assert item["apiVersion"] == f"{resources.GROUP}/v1alpha1"
        SPEC_MODELS[item["kind"]].model_validate(item["spec"])


def test_what_users_deploy_names_a_real_release_never_a_placeholder() -> None:
    """The production overlay and the GitOps examples run the version this repository is."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    overlay = yaml.safe_load(
        (ROOT / "manifests/kustomize/overlays/production/kustomization.yaml").read_text()
    )
    assert overlay["images"] == [{"name": "ghcr.io/todo-dev/todo-operator", "newTag": version}]
    shipped = [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "manifests/kustomize").rglob("*.yaml"),
    ]
    shipped += [path for path in GITOPS.rglob("*") if path.is_file()]
    placeholders = [
        str(path.relative_to(ROOT)) for path in shipped if "sha256:" + "0" * 64 in path.read_text()
    ]
    assert placeholders == []
