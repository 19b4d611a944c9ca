"""Every PromQL expression in the dashboards and the rules parses and names metrics that exist."""

from __future__ import annotations

import pytest
from prometheus_client.registry import CollectorRegistry

from tests.observability import checks, promql, rules

DASHBOARDS = checks.load_dashboards()
RULES = rules.load_rules_file()
EXPRESSIONS: list[tuple[str, str]] = [
    (f"{name} {where}", expression)
    for name, dashboard in DASHBOARDS.items()
    for where, expression in checks.expressions(dashboard)
] + [(f"rule {rule['alert']}", rule["expr"]) for rule in checks.alerting_rules(RULES)]


def test_there_is_something_to_check() -> None:
    assert len(DASHBOARDS) >= 4
    assert len(EXPRESSIONS) > 50


@pytest.mark.parametrize(("where", "expression"), EXPRESSIONS, ids=[where for where, _ in EXPRESSIONS])
def test_expression_parses_and_names_known_metrics(
    where: str, expression: str, catalogue: promql.Catalogue
) -> None:
    assert promql.problems(expression, catalogue) == []


def test_every_family_of_the_registry_has_series(registry: CollectorRegistry) -> None:
    # A labelled family without series would be missing from the catalogue: conftest must
    # measure it once (as it does for the API's request metrics).
    empty = [family.name for family in registry.collect() if not family.samples]
    assert empty == []


def test_the_catalogue_has_the_suffixed_sample_names(catalogue: promql.Catalogue) -> None:
    for name in (
        "todo_reconcile_duration_seconds_bucket",
        "todo_reconcile_errors_total",
        "todo_api_requests_total",
        "todo_recurring_task_next_due_seconds_gcount",
        "todo_reminder_delivery_lag_seconds_bucket",
        "todo_outbox_oldest_pending_age_seconds",
        "process_resident_memory_bytes",
    ):
        assert name in catalogue.labels, name
    assert "todo_reconcile_errors" not in catalogue.labels  # counters are queried with _total


def test_the_exporters_metrics_in_use_are_the_documented_ones() -> None:
    used = promql.external_metrics(expression for _, expression in EXPRESSIONS)
    # The dashboards and rules do read each exporter (so each allow-list is exercised).
    for exporter, names in promql.EXPORTERS.items():
        assert used & names, f"nothing uses {exporter}'s metrics: drop its allow-list"


# --- negative controls: the checks above can fail ------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("rate(todo_made_up_metric_total[5m])", "unknown metric todo_made_up_metric_total"),
        ("sum(kafka_consumergroup_lagg)", "unknown metric kafka_consumergroup_lagg"),
        ("rate(todo_reconcile_errors[5m])", "unknown metric todo_reconcile_errors"),  # no _total
        ("dapr_component_pubsub_egress_count_total", "unknown metric"),
        ("rate(todo_events_published_total[5m]", "does not parse"),
        ('{__name__=~"todo_.+"}', "without a metric name"),
        ('todo_reconcile_errors_total{resaon="transient"}', "has no label 'resaon'"),
        ('todo_reconcile_errors_total{reason!="invalid-spec"}', "never sets reason='invalid-spec'"),
        ('todo_recurring_task_next_due_seconds_bucket{le="3600"}', "never sets le='3600'"),
        ('max(todo_dead_letters{kind="events"})', "never sets kind='events'"),
        ("rate(todo_api_requests_total[$__unknown_interval])", "does not parse"),
        ("label_values(namespace)", "without a metric"),
        ("label_values(todo_tasks_open, nmespace)", "has no label 'nmespace'"),
    ],
)
def test_a_bad_expression_is_reported(expression: str, complaint: str, catalogue: promql.Catalogue) -> None:
    found = promql.problems(expression, catalogue)
    assert any(complaint in problem for problem in found), found


@pytest.mark.parametrize(
    "expression",
    [
        (
            'sum by (kind) (rate(todo_reconcile_errors_total{namespace="$namespace", reason!="invalid_spec"}'
            "[$__rate_interval]))"
        ),
        'max(todo_recurring_task_next_due_seconds_bucket{le="+Inf"})',
        'sum(rate(dapr_component_pubsub_egress_count{success="true"}[5m]))',
        'absent(up{job=~".*todo-operator.*"})',
        "label_values(todo_scheduler_last_run_timestamp_seconds, namespace)",
    ],
)
def test_a_good_expression_passes(expression: str, catalogue: promql.Catalogue) -> None:
    assert promql.problems(expression, catalogue) == []
