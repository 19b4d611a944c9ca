"""The alerting rules: the PrometheusRule CRD's schema, what each alert must carry, a runbook
section for each, and the PrometheusRule equal to the plain rules file it is generated from."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from tests.observability import checks, rules

RULES = rules.load_rules_file()
PROMETHEUS_RULE = checks.load_yaml(rules.PROMETHEUS_RULE)
SCHEMA = json.loads(checks.PROMETHEUS_RULE_SCHEMA.read_text())
RUNBOOK_ANCHORS = checks.markdown_anchors(checks.RUNBOOK.read_text())
# What issue #8 asks to be alerted on, by alert name.
REQUIRED_ALERTS = {
    "TodoOutboxLagHigh",  # outbox lag > 60 s
    "TodoKafkaConsumerLagHigh",  # consumer lag > 60 s
    "TodoReminderFailureRateHigh",  # > 5 %
    "TodoRemindersMissed",
    "TodoPodRestartingOften",  # > 3 an hour
    "TodoOperatorDown",
    "TodoOperatorNotReconciling",
    "TodoDeadLettersPresent",
    "TodoApiErrorRateHigh",
}


def _closed(schema: Any) -> Any:
    """The schema with every object closed to fields it does not name: the API server prunes
    unknown fields of a custom resource silently, so a misspelt key would just vanish."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


CLOSED_SCHEMA = _closed(SCHEMA)
# metadata is the API server's to check: leave it open.
CLOSED_SCHEMA["properties"]["metadata"] = {"type": "object"}


def test_the_prometheusrule_is_generated_from_the_rules_file() -> None:
    assert rules.PROMETHEUS_RULE.read_text() == rules.render(RULES), (
        "observability/prometheus/prometheusrule.yaml is stale: "
        "run .venv/bin/python -m tests.observability.rules --write"
    )
    assert PROMETHEUS_RULE["spec"]["groups"] == RULES["groups"]


def test_the_prometheusrule_matches_the_crd_schema() -> None:
    assert PROMETHEUS_RULE["apiVersion"] == "monitoring.coreos.com/v1"
    assert PROMETHEUS_RULE["kind"] == "PrometheusRule"
    assert checks.schema_problems(PROMETHEUS_RULE, CLOSED_SCHEMA) == []


def test_every_alert_has_for_severity_words_and_its_runbook_section() -> None:
    assert checks.rule_problems(RULES, runbook_anchors=RUNBOOK_ANCHORS) == []


def test_the_alerts_the_issue_asks_for_exist() -> None:
    names = {rule["alert"] for rule in checks.alerting_rules(RULES)}
    assert names >= REQUIRED_ALERTS


def test_every_runbook_alert_section_has_an_alert() -> None:
    # The other way round: no section left behind for an alert that was removed or renamed.
    names = {rule["alert"].lower() for rule in checks.alerting_rules(RULES)}
    sections = {anchor for anchor in RUNBOOK_ANCHORS if anchor.startswith("todo")}
    assert sections == names


def test_thresholds_are_the_ones_the_issue_names() -> None:
    by_name = {rule["alert"]: rule for rule in checks.alerting_rules(RULES)}
    assert "> 60" in by_name["TodoOutboxLagHigh"]["expr"]
    assert "> 60" in by_name["TodoKafkaConsumerLagHigh"]["expr"]
    assert "> 0.05" in by_name["TodoReminderFailureRateHigh"]["expr"]
    assert "[1h]) > 3" in by_name["TodoPodRestartingOften"]["expr"]
    assert "> 300" in by_name["TodoOperatorNotReconciling"]["expr"]


# --- negative controls ---------------------------------------------------------------------------


def _rule(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next(rule for rule in checks.alerting_rules(document) if rule["alert"] == name)


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("for", None, "no valid 'for'"),
        ("for", "5 minutes", "no valid 'for'"),
        ("labels", {"severity": "page"}, "labels.severity"),
        ("labels", {}, "labels.severity"),
        ("annotations.summary", None, "no annotations.summary"),
        ("annotations.runbook_url", None, "no annotations.runbook_url"),
        ("annotations.runbook_url", f"{checks.RUNBOOK_URL}#no-such-section", "not a heading"),
        ("annotations.runbook_url", f"{checks.RUNBOOK_URL}#todoapidown", "not the alert's own section"),
        ("annotations.runbook_url", "https://example.com/runbook#todooutboxlaghigh", "does not point into"),
        ("alert", "outbox_lag", "CamelCase"),
        ("alert", "TodoOperatorDown", "defined more than once"),
    ],
)
def test_a_bad_rule_is_reported(field: str, value: Any, complaint: str) -> None:
    broken = copy.deepcopy(RULES)
    rule = _rule(broken, "TodoOutboxLagHigh")
    holder, key = (rule["annotations"], field.split(".")[1]) if "." in field else (rule, field)
    if value is None:
        holder.pop(key, None)
    else:
        holder[key] = value
    found = checks.rule_problems(broken, runbook_anchors=RUNBOOK_ANCHORS)
    assert any(complaint in problem for problem in found), found


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        (lambda r: r["spec"]["groups"][0]["rules"][0].pop("expr"), "'expr' is a required property"),
        (lambda r: r["spec"]["groups"][0]["rules"][0].update({"for": "5 min"}), "does not match"),
        (lambda r: r["spec"]["groups"][0].pop("name"), "'name' is a required property"),
        (lambda r: r["spec"]["groups"][0]["rules"][0].update({"anotations": {}}), "Additional properties"),
        (
            lambda r: r["spec"]["groups"][0]["rules"][0]["labels"].update({"tier": 1}),
            "is not of type 'string'",
        ),
    ],
)
def test_a_prometheusrule_off_the_schema_is_reported(break_it: Any, complaint: str) -> None:
    broken = copy.deepcopy(PROMETHEUS_RULE)
    break_it(broken)
    found = checks.schema_problems(broken, CLOSED_SCHEMA)
    assert any(complaint in problem for problem in found), found


def test_a_stale_prometheusrule_is_noticed() -> None:
    edited = copy.deepcopy(RULES)
    _rule(edited, "TodoOutboxLagHigh")["for"] = "10m"
    assert rules.render(edited) != rules.PROMETHEUS_RULE.read_text()
    assert yaml.safe_load(rules.render(edited))["spec"]["groups"] == edited["groups"]


def test_markdown_anchors_follow_github() -> None:
    text = "# Runbook\n## TodoOutboxLagHigh\n### First checks (`psql`)\n```\n# not a heading\n```\n"
    assert checks.markdown_anchors(text) == {"runbook", "todooutboxlaghigh", "first-checks-psql"}
