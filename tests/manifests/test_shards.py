"""Operator shards (``operator.shards``; docs/DEPLOYMENT.md, "Operator shards").

Each shard is one more operator Deployment, rendered from the operator's own template,
serving the namespaces its globs match minus those of every shard before it; the operator
Deployment (the default shard) serves the rest. The renders are real ``helm install``s with
schema validation; which namespaces each Deployment serves is read back from its rendered
environment by the operator's own settings, and checked with both the operator's matcher
(``NamespaceScope.matches``) and Kopf's (``match_namespace`` over ``kopf_patterns``): every
namespace of ~200, made to hit every glob and to miss them all, has exactly one owner, the
first shard that matches it or else the default.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import random
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import yaml
from kopf._cogs.structs.references import NamespaceName, match_namespace

from tests.manifests import checks, conftest, rendering
from todo_operator.domain import scope
from todo_operator.operator.settings import OperatorSettings

SCENARIO = "ci/shards-values.yaml"  # three shards, peering, ServiceMonitors (rendered by the session)
SHARD_LABEL = "todo.dev/shard"
COMPONENT = "app.kubernetes.io/component"
SHARD_ENV = ("TODO_NAMESPACES", "TODO_NAMESPACES_EXCLUDED", "TODO_SHARD", "TODO_PEERING_NAME")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

# Two shards, the broader glob first: "team-a-*" of the second is shadowed by "team-*" of the first.
TWO_SHARDS: list[rendering.Json] = [
    {"name": "platform", "namespaces": ["team-*", "kube-?", "ops"]},
    {"name": "team-a", "namespaces": ["team-a-*", "payments", "*-a"]},
]
THREE_SHARDS: list[rendering.Json] = yaml.safe_load((conftest.CHART / SCENARIO).read_text())["operator"][
    "shards"
]
# Rendered here (over values.yaml), besides the session's SCENARIO and defaults.
CASES: dict[str, rendering.Json] = {
    "two shards": {"operator": {"shards": TWO_SHARDS}},
    "three shards, dapr-jobs": {
        "operator": {"shards": THREE_SHARDS, "peering": {"enabled": True}, "replicas": 2},
        "reminders": {"mode": "dapr-jobs"},
    },
}
# Value sets the chart must refuse, each with the words the error must contain.
REFUSED: dict[str, tuple[rendering.Json, str]] = {
    "shards and watchNamespaces": (
        {"operator": {"watchNamespaces": ["team-a"], "shards": TWO_SHARDS}},
        "operator.shards needs operator.watchNamespaces empty",
    ),
    "two shards of one name": (
        {"operator": {"shards": [{"name": "a", "namespaces": ["a-*"]}, {"name": "a", "namespaces": ["b"]}]}},
        'two shards are named "a"',
    ),
    "a shard named default": (
        {"operator": {"shards": [{"name": "default", "namespaces": ["a-*"]}]}},
        'a shard may not be named "default"',
    ),
    "extraEnv sets the shard's settings": (
        {"operator": {"shards": TWO_SHARDS, "extraEnv": [{"name": "TODO_NAMESPACES_EXCLUDED", "value": ""}]}},
        "operator.extraEnv sets TODO_NAMESPACES_EXCLUDED: with operator.shards the chart sets it",
    ),
    # The schema: the shape of each shard.
    "a shard without namespaces": (
        {"operator": {"shards": [{"name": "a", "namespaces": []}]}},
        "at '/operator/shards/0/namespaces': minItems",
    ),
    "a shard without a namespaces key": (
        {"operator": {"shards": [{"name": "a"}]}},
        "at '/operator/shards/0': missing property 'namespaces'",
    ),
    "a name that is no DNS label": (
        {"operator": {"shards": [{"name": "Team_A", "namespaces": ["a"]}]}},
        "at '/operator/shards/0/name': 'Team_A' does not match pattern",
    ),
    "a name of 33 characters": (
        {"operator": {"shards": [{"name": "a" * 33, "namespaces": ["a"]}]}},
        f"at '/operator/shards/0/name': '{'a' * 33}' does not match pattern",
    ),
    "a Kopf negation as a glob": (
        {"operator": {"shards": [{"name": "a", "namespaces": ["a-*", "!a-b"]}]}},
        "at '/operator/shards/0/namespaces/1': '!a-b' does not match pattern",
    ),
    "a glob with a character no namespace has": (
        {"operator": {"shards": [{"name": "a", "namespaces": ["team_a"]}]}},
        "at '/operator/shards/0/namespaces/0': 'team_a' does not match pattern",
    ),
    "an unknown key in a shard": (
        {"operator": {"shards": [{"name": "a", "namespaces": ["a"], "replicas": 2}]}},
        "at '/operator/shards/0': additional properties 'replicas' not allowed",
    ),
}
# The same chart without values.schema.json (`helm install --skip-schema-validation`): its own
# checks still refuse what would break the shards.
REFUSED_WITHOUT_SCHEMA: dict[str, tuple[rendering.Json, str]] = {
    "a shard without namespaces": (
        {"operator": {"shards": [{"name": "a", "namespaces": []}]}},
        'shard "a" has no namespaces',
    ),
    "a shard without a namespaces key": (
        {"operator": {"shards": [{"name": "a"}]}},
        'shard "a" has no namespaces',
    ),
    "a shard without a name": (
        {"operator": {"shards": [{"namespaces": ["a"]}]}},
        "every shard needs a name",
    ),
}


@dataclass(frozen=True)
class Operator:
    """One rendered operator Deployment and what it serves."""

    deployment: rendering.Json

    @property
    def name(self) -> str:
        name: str = self.deployment["metadata"]["name"]
        return name

    @property
    def pod(self) -> rendering.Json:
        template: rendering.Json = self.deployment["spec"]["template"]
        return template

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.pod["metadata"]["labels"]
        return labels

    @property
    def env(self) -> dict[str, str | None]:
        (container,) = self.pod["spec"]["containers"]
        return {variable["name"]: variable.get("value") for variable in container["env"]}

    @property
    def shard(self) -> str | None:
        return self.env.get("TODO_SHARD")

    def settings(self) -> OperatorSettings:
        """The operator's settings from the variables the chart gives this Deployment, parsed as the
        operator parses its environment (comma-separated lists)."""
        env = self.env
        return OperatorSettings.model_validate(
            {
                "database_url": "postgresql://x/y",
                "namespaces": env["TODO_NAMESPACES"],
                "namespaces_excluded": env.get("TODO_NAMESPACES_EXCLUDED") or "",
                "shard": env.get("TODO_SHARD"),
                "peering_name": env["TODO_PEERING_NAME"],
            }
        )


def operators(objects: Sequence[rendering.Json]) -> list[Operator]:
    """The operator Deployments: the operator's own first, then the shards' in rendering order."""
    found = [
        Operator(o)
        for o in objects
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["metadata"]["labels"][COMPONENT].startswith("operator")
    ]
    return sorted(found, key=lambda operator: operator.labels[COMPONENT] != "operator")


def owner(shards: Sequence[rendering.Json], namespace: str) -> str:
    """The rule, written independently of the chart: the first shard with a matching glob, else default."""
    for shard in shards:
        if any(fnmatch.fnmatchcase(namespace, glob) for glob in shard["namespaces"]):
            name: str = shard["name"]
            return name
    return "default"


def served_by_kopf(settings: OperatorSettings, namespace: str) -> bool:
    """What Kopf watches, given the patterns the operator hands it (none: the whole cluster)."""
    patterns = settings.scope().kopf_patterns()
    return not patterns or any(match_namespace(NamespaceName(namespace), p) for p in patterns)


def namespace_names(shards: Sequence[rendering.Json]) -> list[str]:
    """~200 namespace names: several matches of every glob, near misses, and names no glob matches."""
    rng = random.Random(1234)  # the same names every run
    alphabet = "abcdeimnopstxyz019-"
    fillers = ["", "a", "x", "1", "a-b", "team", "team-a", "team-a-b", "payments", "ops-7"]
    globs = [glob for shard in shards for glob in shard["namespaces"]]
    names = {"default", "kube-system", "kube-public", "todo", "team", "teams", "pay", "ops-1", "a"}

    def fill(pattern: str) -> str:
        text = "".join(rng.choice("abz09") if char == "?" else char for char in pattern)
        return text.replace("*", rng.choice(fillers))

    for glob in globs:
        for _ in range(12):
            names.add(fill(glob))
        for near in (f"x{glob}", f"{glob}x", glob[:-1] or "z", glob.replace("-", "", 1)):
            names.add(fill(near))
    names = {name for name in names if DNS_LABEL.fullmatch(name)}
    while len(names) < 200:
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        if DNS_LABEL.fullmatch(name):
            names.add(name)
    return sorted(names)


def _values(overrides: rendering.Json) -> rendering.Json:
    """values.yaml with ``overrides`` merged in, as Helm merges a -f file."""

    def merge(base: rendering.Json, override: rendering.Json) -> rendering.Json:
        merged = copy.deepcopy(base)
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged

    return merge(rendering.load_values(conftest.CHART / "values.yaml"), overrides)


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory, chart_renders: dict[str, list[rendering.Json]]
) -> dict[str, list[rendering.Json] | str]:
    """The cases, the refused value sets and the defaults, in two child processes."""
    workdir = tmp_path_factory.mktemp("shards")
    jobs = {name: _values(overrides) for name, overrides in CASES.items()}
    jobs |= {f"refused:{name}": _values(overrides) for name, (overrides, _) in REFUSED.items()}
    rendered = rendering.render_charts(jobs, workdir=workdir)
    # The chart as `helm install --skip-schema-validation` sees it: no values.schema.json.
    unchecked = workdir / "chart-without-schema"
    shutil.copytree(conftest.CHART, unchecked)
    (unchecked / "values.schema.json").unlink()
    rendered |= rendering.render_charts(
        {f"unchecked:{name}": _values(overrides) for name, (overrides, _) in REFUSED_WITHOUT_SCHEMA.items()},
        workdir=workdir,
        chart=unchecked,
    )
    return rendered | {name: chart_renders[name] for name in (SCENARIO, "defaults")}


def _objects(results: dict[str, list[rendering.Json] | str], name: str) -> list[rendering.Json]:
    result = results[name]
    if isinstance(result, str):
        pytest.fail(f"the chart did not render ({name}): {result}")
    return result


SHARDS_OF = {SCENARIO: THREE_SHARDS, "two shards": TWO_SHARDS, "three shards, dapr-jobs": THREE_SHARDS}


@pytest.fixture(params=list(SHARDS_OF))
def sharded(
    request: pytest.FixtureRequest, results: dict[str, list[rendering.Json] | str]
) -> tuple[list[rendering.Json], list[rendering.Json]]:
    """(the shards' values, the rendered objects) of one sharded case."""
    name: str = request.param
    return SHARDS_OF[name], _objects(results, name)


def test_each_shard_is_a_deployment_with_its_namespaces(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    shards, objects = sharded
    default, *rest = operators(objects)
    assert default.name == "todo-todo-operator-operator"  # the componentName of "operator", as before
    assert [o.name for o in rest] == [f"{default.name}-{shard['name']}" for shard in shards]
    peering = _values({})["operator"]["peering"]["name"]
    all_globs = ",".join(glob for shard in shards for glob in shard["namespaces"])
    assert {name: default.env.get(name) for name in SHARD_ENV} == {
        "TODO_NAMESPACES": "",
        "TODO_NAMESPACES_EXCLUDED": all_globs,
        "TODO_SHARD": "default",
        "TODO_PEERING_NAME": peering,
    }
    for index, (shard, operator) in enumerate(zip(shards, rest, strict=True)):
        earlier = ",".join(glob for before in shards[:index] for glob in before["namespaces"])
        assert {name: operator.env.get(name) for name in SHARD_ENV} == {
            "TODO_NAMESPACES": ",".join(shard["namespaces"]),
            "TODO_NAMESPACES_EXCLUDED": earlier,
            "TODO_SHARD": shard["name"],
            "TODO_PEERING_NAME": f"{peering}-{shard['name']}",
        }
    for operator in (default, *rest):
        assert operator.labels[SHARD_LABEL] == operator.shard
        assert operator.deployment["metadata"]["labels"][SHARD_LABEL] == operator.shard
        assert operator.deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_no_deployment_selects_another_ones_pods(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    """Deployments whose selectors overlap fight over each other's pods (and ReplicaSets)."""
    _, objects = sharded
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) >= 3
    for selector_of in deployments:
        for pods_of in deployments:
            selected = checks.selects(
                selector_of["spec"]["selector"], pods_of["spec"]["template"]["metadata"]["labels"]
            )
            assert selected == (selector_of is pods_of), (
                checks.name_of(selector_of),
                checks.name_of(pods_of),
            )


def test_every_namespace_has_exactly_one_operator(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    """Disjoint and complete, by the operator's matcher and by Kopf's, and the owner is the first match."""
    shards, objects = sharded
    settings = {operator.shard: operator.settings() for operator in operators(objects)}
    assert list(settings) == ["default", *(shard["name"] for shard in shards)]
    assert all(s.shard == name for name, s in settings.items())
    names = namespace_names(shards)
    assert len(names) >= 200
    owners: dict[str, set[str]] = {}
    for namespace in names:
        by_scope = [shard for shard, s in settings.items() if s.scope().matches(namespace)]
        by_kopf = [shard for shard, s in settings.items() if served_by_kopf(s, namespace)]
        expected = owner(shards, namespace)
        assert by_scope == [expected], namespace
        assert by_kopf == [expected], namespace
        owners.setdefault(expected, set()).add(namespace)
    # The names exercise every glob (each owns some) and names that no glob matches.
    for shard in shards:
        for glob in shard["namespaces"]:
            assert any(fnmatch.fnmatchcase(namespace, glob) for namespace in names), glob
    assert len(owners["default"]) >= 20
    if shards is TWO_SHARDS:
        # team-a's "team-a-*" is shadowed by platform's "team-*": platform serves team-a-x.
        assert "team-a-x" not in owners["team-a"]
        assert any(name.startswith("team-a-") for name in owners["platform"])
    else:
        assert any(name.startswith("team-a-") for name in owners["team-a"])
        assert any(name.startswith("team-") and not name.startswith("team-a") for name in owners["teams"])


def test_the_default_shard_is_the_operator_deployment_as_before(
    results: dict[str, list[rendering.Json] | str],
) -> None:
    """Same name and selector (a selector is immutable: an upgrade must not need a delete), and
    nothing else changed but the shard's variables and label."""
    (before,) = operators(_objects(results, "defaults"))
    after = operators(_objects(results, "two shards"))[0]
    assert after.name == before.name
    assert after.deployment["spec"]["selector"] == before.deployment["spec"]["selector"]
    deployment = copy.deepcopy(after.deployment)
    del deployment["metadata"]["labels"][SHARD_LABEL]
    del deployment["spec"]["template"]["metadata"]["labels"][SHARD_LABEL]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    added = ("TODO_NAMESPACES_EXCLUDED", "TODO_SHARD")
    container["env"] = [variable for variable in container["env"] if variable["name"] not in added]
    assert deployment == before.deployment


def test_shards_are_the_operator_deployment_rendered_again(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    """One template: a shard's Deployment differs from the operator's only in what names the shard."""
    _, objects = sharded
    default, *rest = operators(objects)
    for operator in rest:
        assert _without_shard(operator) == _without_shard(default), operator.name


def _without_shard(operator: Operator) -> rendering.Json:
    """The Deployment with what tells the shards apart taken out."""
    deployment = copy.deepcopy(operator.deployment)
    del deployment["metadata"]["name"]
    for labels in (
        deployment["metadata"]["labels"],
        deployment["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"],
    ):
        labels.pop(SHARD_LABEL, None)
        labels.pop(COMPONENT)
    deployment["spec"]["template"]["metadata"].get("annotations", {}).pop("dapr.io/app-id", None)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["env"] = [variable for variable in container["env"] if variable["name"] not in SHARD_ENV]
    return deployment


def test_without_shards_nothing_is_sharded(chart_renders: dict[str, list[rendering.Json]]) -> None:
    for name, objects in chart_renders.items():
        if name == SCENARIO:
            continue
        (operator,) = operators(objects)
        assert "TODO_SHARD" not in operator.env, name
        assert "TODO_NAMESPACES_EXCLUDED" not in operator.env, name
        assert not [o for o in objects if SHARD_LABEL in o["metadata"].get("labels", {})], name
        policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
        assert not [p for p in policies if "matchExpressions" in p["spec"]["podSelector"]], name


def test_each_shard_peers_through_a_cluster_peering_of_its_own(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    _, objects = sharded
    peerings = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        for o in objects
        if o["apiVersion"].startswith("kopf.dev/")
    }
    deployments = operators(objects)
    if deployments[0].env["TODO_STANDALONE"] == "true":
        assert peerings == set()
        return
    # TODO_SHARD makes every shard, the default one too, peer cluster-wide (its TODO_PEERING_NAME).
    assert peerings == {("ClusterKopfPeering", None, o.env["TODO_PEERING_NAME"]) for o in deployments}
    assert len(peerings) == len(deployments)
    (cluster_role,) = [
        o
        for o in objects
        if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("-operator-cluster")
    ]
    granted = {
        (resource, verb)
        for rule in cluster_role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {("clusterkopfpeerings", verb) for verb in ("get", "list", "watch", "patch")} <= granted


def test_kopf_may_list_and_watch_namespaces(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    """Namespace globs: Kopf finds the namespaces they match by listing and watching Namespaces."""
    _, objects = sharded
    (cluster_role,) = [
        o
        for o in objects
        if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("-operator-cluster")
    ]
    granted = {
        (resource, verb)
        for rule in cluster_role["rules"]
        if rule["apiGroups"] == [""]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {("namespaces", "list"), ("namespaces", "watch")} <= granted
    # One ServiceAccount for them all: what the ClusterRole grants, every shard has.
    assert {o.pod["spec"]["serviceAccountName"] for o in operators(objects)} == {
        b["subjects"][0]["name"]
        for b in objects
        if b["kind"] == "ClusterRoleBinding" and b["roleRef"]["name"] == cluster_role["metadata"]["name"]
    }


def test_each_shards_sidecar_has_its_own_app_id(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    """Dapr jobs come back to the app id that scheduled them: each shard needs its own."""
    shards, objects = sharded
    app_id = _values({})["dapr"]["operatorAppId"]
    annotations = [o.pod["metadata"]["annotations"] for o in operators(objects)]
    assert [a["dapr.io/app-id"] for a in annotations] == [app_id, *(f"{app_id}-{s['name']}" for s in shards)]
    if operators(objects)[0].env["TODO_REMINDER_DELIVERY"] == "dapr-jobs":
        ports = {a["dapr.io/app-port"] for a in annotations}
        assert ports == {str(_values({})["reminders"]["jobs"]["appPort"])}


def test_every_shard_is_scraped_and_let_through(
    sharded: tuple[list[rendering.Json], list[rendering.Json]],
) -> None:
    """A metrics Service per shard, labelled as the operator's (the operator's ServiceMonitor selects
    them all); the operator's NetworkPolicy selects every operator pod and no other pod."""
    _, objects = sharded
    pods = [labels for _, labels, _ in checks.pod_templates(checks.with_notify_jobs(objects))]
    services = [o for o in objects if o["kind"] == "Service"]
    default_service = next(s for s in services if s["metadata"]["name"].endswith("-operator-metrics"))
    for operator in operators(objects):
        (service,) = [
            s for s in services if checks.selects({"matchLabels": s["spec"]["selector"]}, operator.labels)
        ]
        assert [port["targetPort"] for port in service["spec"]["ports"]] == ["metrics"]
        assert service["metadata"]["labels"] == {
            **default_service["metadata"]["labels"],
            SHARD_LABEL: operator.shard,
        }
        assert service["metadata"]["name"] == f"{operator.name}-metrics"
    (policy,) = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "todo-todo-operator-operator"
    ]
    selected = [labels[COMPONENT] for labels in pods if checks.selects(policy["spec"]["podSelector"], labels)]
    assert sorted(selected) == sorted(operator.labels[COMPONENT] for operator in operators(objects))
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    if monitors:
        (monitor,) = [m for m in monitors if m["metadata"]["labels"][COMPONENT] == "operator"]
        scraped = [
            s for s in services if checks.selects(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert len(scraped) == len(operators(objects))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_shards_are_refused(name: str, results: dict[str, list[rendering.Json] | str]) -> None:
    result = results[f"refused:{name}"]
    assert isinstance(result, str), f"{name} rendered, but must be refused"
    assert REFUSED[name][1] in result


@pytest.mark.parametrize("name", sorted(REFUSED_WITHOUT_SCHEMA))
def test_the_templates_refuse_bad_shards_without_the_schema(
    name: str, results: dict[str, list[rendering.Json] | str]
) -> None:
    result = results[f"unchecked:{name}"]
    assert isinstance(result, str), f"{name} rendered, but must be refused"
    assert REFUSED_WITHOUT_SCHEMA[name][1] in result


def test_the_schema_and_the_operator_agree_on_names_and_globs() -> None:
    """The patterns of values.schema.json are the operator's (settings.py, domain/scope.py)."""
    schema = yaml.safe_load((conftest.CHART / "values.schema.json").read_text())
    shard = schema["properties"]["operator"]["properties"]["shards"]["items"]["properties"]
    (constraint,) = OperatorSettings.model_fields["shard"].metadata
    assert shard["name"]["pattern"] == constraint.pattern
    assert shard["namespaces"]["items"]["pattern"] == f"^{scope.GLOB.pattern}$"


@pytest.fixture(autouse=True)
def _no_todo_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OperatorSettings also reads TODO_* variables: none of the test process's may leak in."""
    for name in [name for name in os.environ if name.startswith("TODO_")]:
        monkeypatch.delenv(name)


def test_the_namespace_names_are_a_negative_control() -> None:
    """The generator makes valid names, and a chart that forgot the exclusions would be caught."""
    names = namespace_names(THREE_SHARDS)
    assert all(DNS_LABEL.fullmatch(name) for name in names)
    broken = [
        OperatorSettings.model_validate({"database_url": "postgresql://x/y", "namespaces": s["namespaces"]})
        for s in THREE_SHARDS
    ]
    overlapping = [n for n in names if sum(s.scope().matches(n) for s in broken) > 1]
    assert overlapping  # team-a-x matches team-a's and teams' globs
