"""Every ``TODO_*`` variable the chart and the kustomize overlays give a pod is a real setting.

The commands refuse an unknown ``TODO_*`` variable at start (issue #16), so a
name the manifests set but no command reads would stop the pods: these tests
find it before a cluster does. Names are taken from the rendered objects —
``env``, and the keys of rendered ConfigMaps and Secrets a container loads
with ``envFrom`` — in every chart scenario (defaults, ``ci/``, ``values-*``)
and every overlay, including the reminder Job built from the chart's template.
The notify Secret the user creates is not rendered: its documented keys are
checked with the docs (tests/settings_registry/test_registry.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import pytest

from tests.manifests import checks, conftest, rendering
from todo_operator import settings_registry

TARGETS = [f"chart {name}" for name in conftest.SCENARIOS] + [
    f"kustomize {name}" for name in conftest.OVERLAYS
]


def settings_set(objects: Sequence[rendering.Json]) -> Iterator[tuple[str, str]]:
    """(variable, where) for every environment variable a container of ``objects`` gets."""
    rendered = {(obj.get("kind"), obj["metadata"].get("name")): obj for obj in objects}
    for workload, _, pod in checks.pod_templates(checks.with_notify_jobs(objects)):
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            where = f"{workload} container {container['name']}"
            for variable in container.get("env", []):
                yield variable["name"], where
            for source in container.get("envFrom", []):
                kind, reference = (
                    ("ConfigMap", source["configMapRef"])
                    if "configMapRef" in source
                    else ("Secret", source["secretRef"])
                )
                loaded = rendered.get((kind, reference["name"]), {})  # a user's Secret is not rendered
                for key in [*loaded.get("data", {}), *loaded.get("stringData", {})]:
                    yield source.get("prefix", "") + key, f"{where} ({kind} {reference['name']})"


def unknown_settings(objects: Sequence[rendering.Json]) -> list[str]:
    known = settings_registry.known()
    return [
        f"{where}: {variable}"
        for variable, where in settings_set(objects)
        if variable.upper().startswith(settings_registry.PREFIX) and variable.upper() not in known
    ]


@pytest.fixture(params=TARGETS)
def target(
    request: pytest.FixtureRequest,
    chart_renders: dict[str, list[rendering.Json]],
    kustomize_renders: dict[str, list[rendering.Json]],
) -> list[rendering.Json]:
    source, name = request.param.split(" ", 1)
    return chart_renders[name] if source == "chart" else kustomize_renders[name]


def test_every_todo_variable_the_manifests_set_is_a_setting(target: list[rendering.Json]) -> None:
    names = {variable for variable, _ in settings_set(target)}
    # The walk reaches the Deployments and the reminder Job made from the template ConfigMap:
    # without these two, an empty walk would pass vacuously.
    assert {"TODO_DATABASE_URL", "TODO_REMINDER_RECIPIENT_DOMAINS"} <= names
    assert unknown_settings(target) == []


def test_an_unknown_variable_in_a_manifest_is_caught(chart_renders: dict[str, list[rendering.Json]]) -> None:
    """Negative control: a bogus name in env, and one in a ConfigMap loaded with envFrom."""
    objects = copy.deepcopy(chart_renders["defaults"])
    deployment = next(obj for obj in objects if obj["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "TODO_SMTP_SENDER", "value": "todo@example.com"})
    container.setdefault("envFrom", []).append({"configMapRef": {"name": "extra"}})
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "extra"},
            "data": {"TODO_SMTP_TLS": "1"},
        }
    )
    found = unknown_settings(objects)
    assert [problem.rsplit(": ", 1)[1] for problem in found] == ["TODO_SMTP_SENDER", "TODO_SMTP_TLS"], found


def test_the_default_image_of_reminder_jobs_is_the_charts_image_at_this_version() -> None:
    """Where the chart does not set it (the plain `todo-operator run` of the README)."""
    import tomllib

    import yaml

    from todo_operator.operator.settings import OperatorSettings

    values = yaml.safe_load((rendering.ROOT / "manifests/helm/todo-operator/values.yaml").read_text())
    version = tomllib.loads((rendering.ROOT / "pyproject.toml").read_text())["project"]["version"]
    default = OperatorSettings.model_fields["notify_image"].default
    assert default == f"{values['image']['repository']}:{version}"
