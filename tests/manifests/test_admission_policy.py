"""
Who may mail whom, who may own what: the chart's ValidatingAdmissionPolicy
(templates/admission-policy.yaml, docs/SECURITY.md), its CEL run with cel-python
exactly as rendered, on admission requests for every chart scenario and kustomize
overlay (tests/manifests/admission.py plays the API server's part).

The objects in the requests are defaulted and validated by our CRDs first (the API
server does that before validating admission), so a fixture cannot name a field the
CRDs do not have.
"""

from __future__ import annotations

import copy
import dataclasses
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
import yaml

from kube_emulator import validation
from tests.manifests import admission, checks, conftest, rendering

Json = rendering.Json

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
OUTSIDER = "ceo@othercompany.example"
PHISHING = "Your mailbox is full: sign in at https://othercompany-mail.example.net/ within 24 hours."
GARBAGE_COLLECTOR = "system:serviceaccount:kube-system:generic-garbage-collector"
OFF = "ci/admission-policy-off-values.yaml"
CRDS: dict[str, Json] = {
    crd["spec"]["names"]["kind"]: crd
    for crd in (yaml.safe_load(path.read_text()) for path in sorted(rendering.CRDS.glob("*.yaml")))
}
# Where each kind names a person, and the only such field (the CRDs are checked for others below).
PERSON_FIELDS = {"Task": "spec.owner", "RecurringTask": "spec.taskTemplate.owner", "Reminder": "spec.to"}


# --- objects as the API server hands them to admission ---------------------------------------------------


def _admitted(obj: Json) -> Json:
    """``obj`` defaulted and validated by its CRD, as validating admission sees it."""
    (version,) = CRDS[obj["kind"]]["spec"]["versions"]
    outcome = validation.admit(obj, version["schema"]["openAPIV3Schema"], old=None)
    assert not outcome.causes, outcome.causes
    assert not outcome.unknown_fields, outcome.unknown_fields
    return obj


def task(owner: str, *, title: str = "Renew passport") -> Json:
    return _admitted(
        {
            "apiVersion": "todo.dev/v1alpha1",
            "kind": "Task",
            "metadata": {"name": "renew-passport", "namespace": "team-a"},
            "spec": {"title": title, "owner": owner, "dueAt": "2026-12-10T09:00:00+01:00"},
        }
    )


def recurring_task(owner: str, *, title: str = "Weekly review") -> Json:
    return _admitted(
        {
            "apiVersion": "todo.dev/v1alpha1",
            "kind": "RecurringTask",
            "metadata": {"name": "weekly-review", "namespace": "team-a"},
            "spec": {
                "schedule": {"rrule": "FREQ=WEEKLY;BYDAY=FR", "start": "2026-12-04T16:00:00"},
                "taskTemplate": {"title": title, "owner": owner},
            },
        }
    )


def reminder(*, to: str | None = None, message: str = "Bring the slides") -> Json:
    spec: Json = {"taskRef": {"name": "renew-passport"}, "before": "1h", "message": message}
    if to is not None:
        spec["to"] = to
    return _admitted(
        {
            "apiVersion": "todo.dev/v1alpha1",
            "kind": "Reminder",
            "metadata": {"name": "renew-passport-1h", "namespace": "team-a"},
            "spec": spec,
        }
    )


def changed(obj: Json, change: Callable[[Json], object]) -> Json:
    """A copy of ``obj`` after ``change`` (which edits it in place), validated again."""
    copied = copy.deepcopy(obj)
    change(copied)
    return _admitted(copied)


# --- who is who in a rendering ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Identities:
    """The user names of a release's components, and how the API server spells a person's."""

    operator: str
    api: str | None
    notify: str
    prefix: str = ""

    def user(self, address: str) -> str:
        return self.prefix + address


def service_account_users(objects: Sequence[Json]) -> dict[str, str]:
    """Component -> the user name its pods act as (system:serviceaccount:<namespace>:<name>)."""
    users = {}
    for obj in checks.with_notify_jobs(objects):
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        template = obj["spec"]["template"]
        component = template["metadata"]["labels"].get("app.kubernetes.io/component")
        account = template["spec"].get("serviceAccountName")
        if component and account:
            users[component] = f"system:serviceaccount:{obj['metadata']['namespace']}:{account}"
    return users


def identities(objects: Sequence[Json], prefix: str = "") -> Identities:
    users = service_account_users(objects)
    return Identities(operator=users["operator"], api=users.get("api"), notify=users["notify"], prefix=prefix)


def the_policy(objects: Sequence[Json]) -> tuple[Json, Json]:
    (policy,) = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    return policy, binding


# --- the cases -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    attempt: admission.Attempt
    allowed: bool
    mentions: tuple[str, ...] = ()  # what the refusal must name: the field, the person, the user


def create(
    obj: Json, user: str, *, groups: Sequence[str] = (), namespace: str = "team-a"
) -> admission.Attempt:
    return admission.Attempt(
        operation="CREATE", object=obj, user=user, groups=tuple(groups), namespace=namespace
    )


def update(old: Json, new: Json, user: str, *, subresource: str = "") -> admission.Attempt:
    return admission.Attempt(
        operation="UPDATE", object=new, old_object=old, user=user, subresource=subresource
    )


def core_cases(who: Identities) -> list[Case]:
    """What every rendering with the policy on must decide the same way."""
    alice, bob, carol = who.user(ALICE), who.user(BOB), who.user(CAROL)
    to_carol = reminder(to=CAROL)
    cases = [
        Case("alice creates her own task", create(task(ALICE), alice), True),
        Case("alice creates a task for bob", create(task(BOB), alice), False, ("spec.owner", BOB, alice)),
        Case("alice creates her own recurring task", create(recurring_task(ALICE), alice), True),
        Case(
            "alice creates a recurring task for bob",
            create(recurring_task(BOB), alice),
            False,
            ("spec.taskTemplate.owner", BOB, alice),
        ),
        Case("alice creates a reminder without spec.to", create(reminder(), alice), True),
        Case("alice creates a reminder to herself", create(reminder(to=ALICE), alice), True),
        Case(
            "alice mails an outsider",
            create(reminder(to=OUTSIDER, message=PHISHING), alice),
            False,
            ("spec.to", OUTSIDER, alice),
        ),
        Case("alice reminds bob", create(reminder(to=BOB), alice), False, ("spec.to", BOB, alice)),
        # The operator creates occurrences, and the Reminders of a Task's spec.reminders, for their owners.
        Case("the operator creates an occurrence for bob", create(task(BOB), who.operator), True),
        Case("the operator creates a reminder to bob", create(reminder(to=BOB), who.operator), True),
        Case("the operator patches bob's task", update(task(BOB), task(BOB, title="x"), who.operator), True),
        # Updates: the person may stay as it was (a Reminder: only if its spec does).
        Case(
            "bob edits the title of alice's task",
            update(task(ALICE), task(ALICE, title="Renew ID"), bob),
            True,
        ),
        Case(
            "bob ticks alice's task complete",
            update(task(ALICE), changed(task(ALICE), lambda t: t["spec"].update(completed=True)), bob),
            True,
        ),
        Case("bob takes alice's task over", update(task(ALICE), task(BOB), bob), True),
        Case(
            "bob hands alice's task to carol",
            update(task(ALICE), task(CAROL), bob),
            False,
            ("spec.owner", CAROL, f"(it was {ALICE})", bob),
        ),
        Case(
            "alice hands her task to bob",
            update(task(ALICE), task(BOB), alice),
            False,
            ("spec.owner", BOB, alice),
        ),
        Case(
            "bob edits the title of alice's recurring task",
            update(recurring_task(ALICE), recurring_task(ALICE, title="Monthly review"), bob),
            True,
        ),
        Case(
            "bob hands alice's recurring task to carol",
            update(recurring_task(ALICE), recurring_task(CAROL), bob),
            False,
            ("spec.taskTemplate.owner", CAROL, bob),
        ),
        Case(
            "bob rewrites the message of a reminder to carol",
            update(to_carol, reminder(to=CAROL, message=PHISHING), bob),
            False,
            ("spec.to", CAROL, bob, "metadata"),
        ),
        Case(
            "carol edits her reminder", update(to_carol, reminder(to=CAROL, message="Slides!"), carol), True
        ),
        Case(
            "the garbage collector edits the metadata of a reminder to carol",
            update(
                to_carol, changed(to_carol, lambda r: r["metadata"].update(finalizers=[])), GARBAGE_COLLECTOR
            ),
            True,
        ),
        Case(
            "bob adds an outsider to a reminder without spec.to",
            update(reminder(), reminder(to=OUTSIDER), bob),
            False,
            ("spec.to", OUTSIDER, bob),
        ),
        Case("bob drops spec.to from a reminder to carol", update(to_carol, reminder(), bob), True),
        # Not selected: deletes, and the status subresource.
        Case(
            "alice deletes bob's task",
            admission.Attempt(operation="DELETE", object=None, old_object=task(BOB), user=alice),
            True,
        ),
        Case(
            "alice writes the status of bob's task",
            update(
                task(BOB),
                changed(task(BOB), lambda t: t.update(status={"phase": "Completed"})),
                alice,
                subresource="status",
            ),
            True,
        ),
        # Only the exact user names are trusted.
        Case(
            "a user named like the operator, longer",
            create(task(BOB), who.operator + "-x"),
            False,
            ("spec.owner",),
        ),
        Case(
            "a user named like the operator, shorter",
            create(task(BOB), who.operator[:-1]),
            False,
            ("spec.owner",),
        ),
        Case(
            "the operator's ServiceAccount name in another namespace",
            create(task(BOB), _in_namespace(who.operator, "team-a")),
            False,
            ("spec.owner",),
        ),
        Case(
            "the notify Jobs' ServiceAccount",
            create(task(BOB), who.notify),
            False,
            ("spec.owner", who.notify),
        ),
    ]
    if who.api is not None:
        # The API acts for REST users and checks owner = caller itself.
        cases += [
            Case("the API creates a task for bob", create(task(BOB), who.api), True),
            Case("the API creates a recurring task for bob", create(recurring_task(BOB), who.api), True),
            Case("the API creates a reminder to bob", create(reminder(to=BOB), who.api), True),
        ]
    return cases


def _in_namespace(service_account_user: str, namespace: str) -> str:
    prefix, _, name = service_account_user.rpartition(":")
    return f"{prefix.rpartition(':')[0]}:{namespace}:{name}"


def untrusted_masters(who: Identities) -> list[Case]:
    admin = who.user("admin@example.com")
    return [
        Case(
            "a member of system:masters creates a task for bob",
            create(task(BOB), admin, groups=["system:masters", "system:authenticated"]),
            False,
            ("spec.owner", BOB, admin),
        )
    ]


def trusted_masters(who: Identities) -> list[Case]:
    admin = "minikube-user"
    return [
        Case(
            "minikube's admin applies examples/ naming alice and bob",
            create(task(BOB), admin, groups=["system:masters", "system:authenticated"]),
            True,
        ),
        Case(
            "minikube's admin reminds an outsider",
            create(reminder(to=OUTSIDER), admin, groups=["system:masters"]),
            True,
        ),
    ]


def full_scenario_cases(who: Identities) -> list[Case]:
    """ci/full-values.yaml: trusted groups and users, user names prefixed with "oidc:"."""
    lead = who.user("lead@example.com")
    return [
        Case(
            "a member of todo-leads creates a task for bob",
            create(task(BOB), lead, groups=["todo-leads"]),
            True,
        ),
        Case(
            "a member of oidc:platform-admins reminds an outsider",
            create(reminder(to=OUTSIDER), lead, groups=["system:authenticated", "oidc:platform-admins"]),
            True,
        ),
        Case(
            "a member of another group creates a task for bob",
            create(task(BOB), lead, groups=["todo-leads-emeritus", "system:authenticated"]),
            False,
            ("spec.owner", BOB, lead),
        ),
        Case(
            "Argo CD applies a task for bob",
            create(task(BOB), "system:serviceaccount:argocd:argocd-application-controller"),
            True,
        ),
        Case(
            "alice's address without the user name prefix (another identity)",
            create(task(ALICE), ALICE),
            False,
            ("spec.owner", ALICE),
        ),
        *untrusted_masters(who),
    ]


def namespaced_cases(who: Identities) -> list[Case]:
    """ci/namespaced-peering-values.yaml: the operator watches team-a and team-b only."""
    alice = who.user(ALICE)
    return [
        Case(
            "alice creates a task for bob in team-b",
            create(task(BOB), alice, namespace="team-b"),
            False,
            (BOB,),
        ),
        Case(
            "alice creates a task for bob where no operator of this release works",
            create(task(BOB), alice, namespace="team-c"),
            True,
        ),
    ]


def minimal_cases(defaults: Identities) -> Callable[[Identities], list[Case]]:
    """ci/minimal-values.yaml has no API: its ServiceAccount's name (from the defaults) is nobody's."""

    def cases(who: Identities) -> list[Case]:
        assert who.api is None
        assert defaults.api is not None
        return [
            Case("the API of a release without one", create(task(BOB), defaults.api), False, ("spec.owner",))
        ]

    return cases


def no_more_cases(who: Identities) -> list[Case]:
    return []


def fixture_failures(policy: Json, binding: Json, cases: Sequence[Case]) -> list[str]:
    """Every way the policy's answers differ from the cases' (empty: the policy decides as documented)."""
    failures = []
    for case in cases:
        decision = admission.decide(policy, binding, case.attempt)
        if decision.errors:
            failures.append(f"{case.name}: {'; '.join(decision.errors)}")
        if decision.allowed != case.allowed:
            verdict = "allowed" if decision.allowed else f"refused ({decision.message})"
            failures.append(f"{case.name}: {verdict}")
        elif not case.allowed:
            missing = [word for word in case.mentions if word not in decision.message]
            if missing:
                failures.append(f"{case.name}: the message does not name {missing}: {decision.message}")
    return failures


# --- the tests -------------------------------------------------------------------------------------------

TARGETS = [f"chart {name}" for name in conftest.SCENARIOS] + [
    f"kustomize {name}" for name in conftest.OVERLAYS
]
POLICY_TARGETS = [target for target in TARGETS if target != f"chart {OFF}"]
# User name prefixes and the cases beyond core_cases, by rendering.
PREFIXES = {"chart ci/full-values.yaml": "oidc:"}
EXTRA_CASES: dict[str, Callable[[Identities], list[Case]]] = {
    "chart defaults": untrusted_masters,
    "chart ci/full-values.yaml": full_scenario_cases,
    "chart ci/namespaced-peering-values.yaml": namespaced_cases,
    "chart values-minikube.yaml": trusted_masters,
    "kustomize minikube": trusted_masters,
    "kustomize production": untrusted_masters,
}


def _objects(
    target: str, chart_renders: dict[str, list[Json]], kustomize_renders: dict[str, list[Json]]
) -> list[Json]:
    source, name = target.split(" ", 1)
    return chart_renders[name] if source == "chart" else kustomize_renders[name]


@pytest.mark.parametrize("target", TARGETS)
def test_the_policy_is_rendered_unless_switched_off(
    target: str, chart_renders: dict[str, list[Json]], kustomize_renders: dict[str, list[Json]]
) -> None:
    kinds = [o["kind"] for o in _objects(target, chart_renders, kustomize_renders)]
    expected = 0 if target == f"chart {OFF}" else 1
    assert kinds.count("ValidatingAdmissionPolicy") == expected
    assert kinds.count("ValidatingAdmissionPolicyBinding") == expected


@pytest.mark.parametrize("target", POLICY_TARGETS)
def test_the_policy_denies_creates_and_updates_of_our_kinds(
    target: str, chart_renders: dict[str, list[Json]], kustomize_renders: dict[str, list[Json]]
) -> None:
    policy, binding = the_policy(_objects(target, chart_renders, kustomize_renders))
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]
    assert rule["apiGroups"] == sorted({crd["spec"]["group"] for crd in CRDS.values()})
    assert rule["apiVersions"] == sorted(
        {v["name"] for crd in CRDS.values() for v in crd["spec"]["versions"]}
    )
    assert sorted(rule["resources"]) == sorted(crd["spec"]["names"]["plural"] for crd in CRDS.values())
    assert all(v["messageExpression"] for v in spec["validations"])


def _email_fields(schema: Mapping[str, Any], path: str = "") -> set[str]:
    """Paths of the string fields that hold an e-mail address (the CRDs' pattern with an @)."""
    found = set()
    if schema.get("type") == "string" and "@" in schema.get("pattern", ""):
        found.add(path)
    for key, sub in (schema.get("properties") or {}).items():
        found |= _email_fields(sub, f"{path}.{key}" if path else key)
    return found


def test_the_fields_the_policy_checks_are_every_person_in_the_crds(
    chart_renders: dict[str, list[Json]],
) -> None:
    """The policy names the CRDs' exact field paths, and no field naming a person is left unchecked."""
    policy, binding = the_policy(chart_renders["defaults"])
    objects = {"Task": task(ALICE), "RecurringTask": recurring_task(ALICE), "Reminder": reminder(to=ALICE)}
    for kind, obj in objects.items():
        (version,) = CRDS[kind]["spec"]["versions"]
        schema = version["schema"]["openAPIV3Schema"]
        assert _email_fields(schema) == {PERSON_FIELDS[kind]}, kind
        decision = admission.decide(policy, binding, create(obj, ALICE))
        assert (decision.allowed, decision.errors) == (True, ()), kind
        assert decision.variables["field"] == PERSON_FIELDS[kind], kind
        assert decision.variables["named"] == ALICE, kind


@pytest.mark.parametrize("target", POLICY_TARGETS)
def test_the_policy_decides_as_documented(
    target: str, chart_renders: dict[str, list[Json]], kustomize_renders: dict[str, list[Json]]
) -> None:
    objects = _objects(target, chart_renders, kustomize_renders)
    who = identities(objects, PREFIXES.get(target, ""))
    extra = EXTRA_CASES.get(target, no_more_cases)
    if target == "chart ci/minimal-values.yaml":
        extra = minimal_cases(identities(chart_renders["defaults"]))
    failures = fixture_failures(*the_policy(objects), core_cases(who) + extra(who))
    assert not failures


# --- negative controls: a broken policy fails the cases ---------------------------------------------------


def _operator_not_exempt(policy: Json) -> None:
    del policy["spec"]["matchConditions"]


def _always_true(policy: Json) -> None:
    policy["spec"]["validations"][0]["expression"] = "true"


def _trust_by_substring(policy: Json) -> None:
    (condition, *_) = policy["spec"]["matchConditions"]
    condition["expression"] = "!request.userInfo.username.contains('todo-todo-operator-')"


def _to_without_has(policy: Json) -> None:
    named = next(v for v in policy["spec"]["variables"] if v["name"] == "named")
    named["expression"] = named["expression"].replace(
        "has(object.spec.to) ? object.spec.to : ''", "object.spec.to"
    )


def _any_reminder_update_keeping_to(policy: Json) -> None:
    keeps = next(v for v in policy["spec"]["variables"] if v["name"] == "keepsThePerson")
    keeps["expression"] = "request.operation == 'UPDATE' && variables.named == variables.namedBefore"


def _vague_message(policy: Json) -> None:
    policy["spec"]["validations"][0]["messageExpression"] = "'not allowed: ' + variables.field"


def _message_not_a_string(policy: Json) -> None:
    policy["spec"]["validations"][0]["messageExpression"] = "variables.named == ''"


BREAKAGES: dict[str, tuple[Callable[[Json], None], str]] = {
    # name: (how the policy is broken, a case that must then fail)
    "always true": (_always_true, "alice mails an outsider: allowed"),
    "the operator not exempt": (_operator_not_exempt, "the operator creates an occurrence for bob: refused"),
    "trusted by substring": (_trust_by_substring, "a user named like the operator, longer: allowed"),
    "spec.to read without has()": (
        _to_without_has,
        "alice creates a reminder without spec.to: variable named",
    ),
    "a reminder's spec may change": (
        _any_reminder_update_keeping_to,
        "bob rewrites the message of a reminder to carol: allowed",
    ),
    "a message without the user": (_vague_message, "alice creates a task for bob: the message does not name"),
    "a message that is not a string": (
        _message_not_a_string,
        "alice mails an outsider: messageExpression gave",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_policy_fails_the_cases(breakage: str, chart_renders: dict[str, list[Json]]) -> None:
    objects = chart_renders["defaults"]
    policy, binding = the_policy(objects)
    cases = core_cases(identities(objects))
    failures = fixture_failures(policy, binding, cases)
    assert not failures
    broken = copy.deepcopy(policy)
    breaking, failing_case = BREAKAGES[breakage]
    breaking(broken)
    failures = fixture_failures(broken, binding, cases)
    assert any(failure.startswith(failing_case) for failure in failures), failures


# --- Kubernetes versions -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def version_renders(workdir: pathlib.Path) -> dict[str, list[Json] | str]:
    values = rendering.load_values(rendering.CHART / "values.yaml")
    off = rendering.load_values(rendering.CHART / "values.yaml", rendering.CHART / OFF)
    results: dict[str, list[Json] | str] = {}
    for version in ("v1.29.15-eks-0a21954", "v1.30.0-gke.1"):
        rendered = rendering.render_charts(
            {f"{version} on": values, f"{version} off": off}, workdir=workdir, kubernetes_version=version
        )
        results |= rendered
    return results


def test_older_kubernetes_is_told_to_switch_the_policy_off(
    version_renders: dict[str, list[Json] | str],
) -> None:
    refused = version_renders["v1.29.15-eks-0a21954 on"]
    assert isinstance(refused, str)
    assert "Kubernetes 1.30 or newer" in refused
    assert "admissionPolicy.enabled=false" in refused
    assert not isinstance(version_renders["v1.29.15-eks-0a21954 off"], str)


def test_kubernetes_1_30_gets_the_policy(version_renders: dict[str, list[Json] | str]) -> None:
    rendered = version_renders["v1.30.0-gke.1 on"]
    assert not isinstance(rendered, str), rendered
    the_policy(rendered)
