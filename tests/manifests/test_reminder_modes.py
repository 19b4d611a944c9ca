"""How reminders are delivered (``reminders.mode``; docs/DEPLOYMENT.md, "Reminder delivery").

The chart tells the operator its mode (``TODO_REMINDER_DELIVERY``) and gives it
what that mode needs: nothing more for ``cronjob`` (notify pods send, with the
SMTP Secret); for ``inline`` and ``dapr-jobs`` the operator sends itself, so it
loads the SMTP Secret and may reach the SMTP port; ``dapr-jobs`` also needs a
Dapr sidecar on the operator's pod, which calls the operator back on the port
the operator listens on, and may reach the Dapr control plane (the Scheduler).
Each mode is checked on the chart's defaults, and ``dapr-jobs`` also with the
relay on its own (ci/dapr-jobs-values.yaml: a sidecar that relays nothing).
"""

from __future__ import annotations

import json
import os
import pathlib
import typing
from dataclasses import dataclass

import pytest
import yaml

from tests.manifests import checks, conftest, rendering, test_settings_names
from todo_operator.operator.settings import OperatorSettings

SCENARIO = "ci/dapr-jobs-values.yaml"
DAPR_METRICS_PORT = 9091  # the sidecar's, set by the chart (todo-operator.daprAnnotations)
JOB_SETTINGS = ("TODO_DAPR_APP_PORT", "TODO_REMINDER_JOB_RETRY_SECONDS", "TODO_REMINDER_JOB_MAX_RETRIES")


@dataclass(frozen=True, kw_only=True)
class Case:
    """One rendering and what the operator must get in it."""

    overrides: rendering.Json  # over values.yaml
    scenario: str | None = None  # rendered by the session already (conftest.SCENARIOS), with these overrides
    mode: str
    relays: bool  # the operator runs the outbox relay (TODO_DAPR_ENABLED)
    sidecar: bool  # the operator's pod has a Dapr sidecar
    sends_mail: bool  # the operator sends reminders itself


CASES = {
    "cronjob": Case(
        overrides={}, scenario="defaults", mode="cronjob", relays=True, sidecar=True, sends_mail=False
    ),
    "cronjob, no Dapr": Case(
        overrides={"dapr": {"enabled": False}}, mode="cronjob", relays=False, sidecar=False, sends_mail=False
    ),
    "inline": Case(
        overrides={"reminders": {"mode": "inline"}}, mode="inline", relays=True, sidecar=True, sends_mail=True
    ),
    "inline, relay on its own": Case(
        overrides={"reminders": {"mode": "inline"}, "relay": {"enabled": True}},
        mode="inline",
        relays=False,
        sidecar=False,
        sends_mail=True,
    ),
    "dapr-jobs": Case(
        overrides={"reminders": {"mode": "dapr-jobs"}},
        mode="dapr-jobs",
        relays=True,
        sidecar=True,
        sends_mail=True,
    ),
    SCENARIO: Case(
        overrides=yaml.safe_load((conftest.CHART / SCENARIO).read_text()),
        scenario=SCENARIO,
        mode="dapr-jobs",
        relays=False,
        sidecar=True,
        sends_mail=True,
    ),
}


@dataclass(frozen=True, kw_only=True)
class Rendered:
    values: rendering.Json
    objects: list[rendering.Json]

    @property
    def pod(self) -> rendering.Json:
        """The operator Deployment's pod template."""
        (deployment,) = [
            o
            for o in self.objects
            if o["kind"] == "Deployment"
            and o["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
        ]
        template: rendering.Json = deployment["spec"]["template"]
        return template

    @property
    def container(self) -> rendering.Json:
        containers: list[rendering.Json] = self.pod["spec"]["containers"]
        (container,) = containers
        return container

    @property
    def env(self) -> dict[str, str | None]:
        return {variable["name"]: variable.get("value") for variable in self.container["env"]}

    @property
    def annotations(self) -> dict[str, str]:
        annotations: dict[str, str] = self.pod["metadata"].get("annotations", {})
        return annotations

    def policy(self, component: str) -> rendering.Json:
        """The NetworkPolicy of one component (the others select every pod of the release)."""
        (policy,) = [
            o
            for o in self.objects
            if o["kind"] == "NetworkPolicy"
            and o["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == component
        ]
        return policy

    def egress(self, component: str) -> list[rendering.Json]:
        rules: list[rendering.Json] = self.policy(component)["spec"]["egress"]
        return rules

    def ingress_ports(self, component: str) -> set[int]:
        return {port["port"] for rule in self.policy(component)["spec"]["ingress"] for port in rule["ports"]}

    def notify_container(self) -> rendering.Json:
        """The container of the reminder Job the operator makes from the chart's template (cronjob mode)."""
        (job,) = [job for o in self.objects if (job := checks.notify_job(o)) is not None]
        containers: list[rendering.Json] = job["spec"]["template"]["spec"]["containers"]
        (container,) = containers
        return container


def _values(overrides: rendering.Json, scratch: pathlib.Path) -> rendering.Json:
    """The chart's values with ``overrides`` merged in, as Helm merges a -f file."""
    scratch.write_text(json.dumps(overrides))  # JSON is YAML
    return rendering.load_values(conftest.CHART / "values.yaml", scratch)


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory, chart_renders: dict[str, list[rendering.Json]]
) -> dict[str, Rendered]:
    """Every case: the session's scenarios as rendered, the others in one more child process."""
    workdir = tmp_path_factory.mktemp("reminder-modes")
    values = {
        name: _values(case.overrides, workdir / f"values-{index}.json")
        for index, (name, case) in enumerate(CASES.items())
    }
    results = rendering.render_charts(
        {name: values[name] for name, case in CASES.items() if case.scenario is None}, workdir=workdir
    )
    results |= {name: chart_renders[case.scenario] for name, case in CASES.items() if case.scenario}
    renders = {}
    for name, result in results.items():
        if isinstance(result, str):
            pytest.fail(f"the chart did not render ({name}): {result}")
        renders[name] = Rendered(values=values[name], objects=result)
    return renders


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, rendered: dict[str, Rendered]) -> tuple[Case, Rendered]:
    name: str = request.param
    return CASES[name], rendered[name]


def test_the_default_is_cronjob() -> None:
    """Installs that never set reminders.mode keep the delivery they had before the value existed."""
    assert rendering.load_values(conftest.CHART / "values.yaml")["reminders"]["mode"] == "cronjob"


def test_the_operator_is_told_its_mode(case: tuple[Case, Rendered]) -> None:
    expected, got = case
    env = got.env
    assert env["TODO_REMINDER_DELIVERY"] == expected.mode
    # TODO_DAPR_ENABLED means "run the outbox relay", not "has a sidecar".
    assert env["TODO_DAPR_ENABLED"] == str(expected.relays).lower()
    jobs = got.values["reminders"]["jobs"]
    if expected.mode == "dapr-jobs":
        assert [env[name] for name in JOB_SETTINGS] == [
            str(jobs["appPort"]),
            str(jobs["retrySeconds"]),
            str(jobs["maxRetries"]),
        ]
    else:
        assert not set(JOB_SETTINGS) & set(env)
    # Dapr injects DAPR_HTTP_PORT, from which the operator finds its sidecar.
    assert "TODO_DAPR_HTTP_ENDPOINT" not in env


def test_the_operator_reads_the_settings_it_is_given(
    case: tuple[Case, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values given as TODO_* parse into the operator's settings, to the values set."""
    expected, got = case
    for name in [name for name in os.environ if name.startswith("TODO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TODO_DATABASE_URL", "postgresql://todo@db:5432/todo")  # a secretKeyRef in the pod
    for name, value in got.env.items():
        if name.startswith("TODO_") and value is not None:
            monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert settings.reminder_delivery == expected.mode
    if expected.mode == "dapr-jobs":
        jobs = got.values["reminders"]["jobs"]
        assert (
            settings.dapr_app_port,
            settings.reminder_job_retry_seconds,
            settings.reminder_job_max_retries,
        ) == (jobs["appPort"], jobs["retrySeconds"], jobs["maxRetries"])


def test_the_sidecar_calls_the_operator_back_on_its_port(case: tuple[Case, Rendered]) -> None:
    expected, got = case
    annotations = got.annotations
    assert (annotations.get("dapr.io/enabled") == "true") == expected.sidecar
    if expected.mode == "dapr-jobs":
        # The sidecar delivers job triggers to the app port: the one the operator listens on.
        assert annotations["dapr.io/app-port"] == got.env["TODO_DAPR_APP_PORT"]
        assert annotations["dapr.io/app-protocol"] == "http"
        assert annotations["dapr.io/app-id"] == got.values["dapr"]["operatorAppId"]
    else:
        # Without an app port the sidecar calls nothing in the operator.
        assert "dapr.io/app-port" not in annotations


def test_who_sends_gets_the_smtp_secret(case: tuple[Case, Rendered]) -> None:
    expected, got = case
    notify = got.notify_container()
    assert notify["envFrom"] == [{"secretRef": {"name": got.values["notify"]["smtpSecret"]}}]
    # The operator loads the very Secret the notify pods load, or nothing.
    assert got.container.get("envFrom") == (notify["envFrom"] if expected.sends_mail else None)


def test_who_sends_may_reach_the_smtp_relay(case: tuple[Case, Rendered]) -> None:
    expected, got = case
    smtp_port = got.values["notify"]["smtpPort"]
    (smtp,) = [
        rule for rule in got.egress("notify") if {"protocol": "TCP", "port": smtp_port} in rule["ports"]
    ]
    assert smtp.get("to", []) == got.values["networkPolicy"]["smtp"]["to"]
    operator = got.egress("operator")
    # The notify pods' rule, peers and port alike; and no other rule opens that port to the operator.
    assert (smtp in operator) == expected.sends_mail
    ports = {port["port"] for rule in operator for port in rule.get("ports", [])}
    assert (smtp_port in ports) == expected.sends_mail


def test_a_sidecar_may_reach_the_dapr_control_plane(case: tuple[Case, Rendered]) -> None:
    """The sidecar reaches the Scheduler (and sentry, placement) in Dapr's namespace, and is scraped."""
    expected, got = case
    selector = got.values["networkPolicy"]["dapr"]["controlPlaneNamespaceSelector"]
    control_plane = {"to": [{"namespaceSelector": {"matchLabels": selector}}]}
    assert (control_plane in got.egress("operator")) == expected.sidecar
    if expected.sidecar:
        assert got.annotations["dapr.io/metrics-port"] == str(DAPR_METRICS_PORT)
    assert (DAPR_METRICS_PORT in got.ingress_ports("operator")) == expected.sidecar


def test_the_names_the_chart_sets_are_settings(case: tuple[Case, Rendered]) -> None:
    """As test_settings_names does for the CI scenarios, for the renderings only this module makes."""
    _, got = case
    assert test_settings_names.unknown_settings(got.objects) == []


def test_the_generic_settings_check_sees_the_job_settings(
    chart_renders: dict[str, list[rendering.Json]],
) -> None:
    """test_settings_names walks every CI scenario: ci/dapr-jobs-values.yaml brings it every new name."""
    names = {name for name, _ in test_settings_names.settings_set(chart_renders[SCENARIO])}
    assert {"TODO_REMINDER_DELIVERY", *JOB_SETTINGS} <= names


def test_the_values_match_the_operators_settings() -> None:
    """The modes the schema allows are the operator's; the chart's job defaults are the operator's own."""
    schema = json.loads((conftest.CHART / "values.schema.json").read_text())["properties"]["reminders"]
    modes = typing.get_args(OperatorSettings.model_fields["reminder_delivery"].annotation)
    assert schema["properties"]["mode"]["enum"] == list(modes)
    defaults = rendering.load_values(conftest.CHART / "values.yaml")["reminders"]["jobs"]
    fields = OperatorSettings.model_fields
    assert (defaults["appPort"], defaults["retrySeconds"], defaults["maxRetries"]) == (
        fields["dapr_app_port"].default,
        fields["reminder_job_retry_seconds"].default,
        fields["reminder_job_max_retries"].default,
    )
