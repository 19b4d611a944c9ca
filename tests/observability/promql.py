"""
PromQL in the dashboards and the alerting rules: which metrics and labels it names,
and whether those exist.

"Exist" means one of two things. Our own metrics are read from the code: a registry
built with every instrument of todo_operator.telemetry.metrics, collected once
(``Catalogue.from_registry``). Other processes' metrics must be on an allow-list
below, per exporter, each list taken from that exporter's documentation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

import promql_parser
from prometheus_client.registry import CollectorRegistry

# Labels a target carries whatever the process exports: Prometheus' own (job, instance)
# and those the Prometheus Operator adds to ServiceMonitor and PodMonitor targets.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "service", "pod", "container", "endpoint"})

# Labels of our metrics whose values form a small fixed set: a matcher (= or !=) on one
# of them must name a value the code produces, or it silently matches nothing (or all).
CLOSED_LABELS = frozenset({"kind", "action", "reason", "phase", "timing", "recurring", "le"})

# Metrics of other processes, exactly as their documentation names them.
EXPORTERS: Mapping[str, frozenset[str]] = {
    # Prometheus itself: the synthetic "up" series of every scraped target
    # (https://prometheus.io/docs/concepts/jobs_instances/#automatically-generated-labels-and-time-series).
    "prometheus": frozenset({"up"}),
    # kube-state-metrics, Pod metrics
    # (https://github.com/kubernetes/kube-state-metrics/blob/main/docs/metrics/workload/pod-metrics.md).
    "kube-state-metrics": frozenset({"kube_pod_container_status_restarts_total"}),
    # The Dapr sidecar (daprd), pub/sub component metrics: dapr/dapr docs/development/dapr-metrics.md
    # ("Pub/Sub metrics"; the bulk ones are listed there since bulk publish came) and
    # pkg/diagnostics/component_monitoring.go. The counts are OpenCensus count views, exported
    # without a _total suffix; the latencies are distributions in milliseconds, exported as
    # histograms (_bucket, _count, _sum). Bulk publishes (the relay's default) count under
    # the _bulk_ names only.
    "dapr-sidecar": frozenset(
        {
            "dapr_component_pubsub_egress_count",
            "dapr_component_pubsub_egress_latencies_bucket",
            "dapr_component_pubsub_egress_latencies_count",
            "dapr_component_pubsub_egress_latencies_sum",
            "dapr_component_pubsub_egress_bulk_count",
            "dapr_component_pubsub_egress_bulk_event_count",
            "dapr_component_pubsub_egress_bulk_latencies_bucket",
            "dapr_component_pubsub_egress_bulk_latencies_count",
            "dapr_component_pubsub_egress_bulk_latencies_sum",
            "dapr_component_pubsub_ingress_count",
            "dapr_component_pubsub_ingress_latencies_bucket",
            "dapr_component_pubsub_ingress_latencies_count",
            "dapr_component_pubsub_ingress_latencies_sum",
        }
    ),
    # danielqsj/kafka_exporter, README.md "Metrics": Brokers, Topics, Consumer Groups.
    "kafka_exporter": frozenset(
        {
            "kafka_brokers",
            "kafka_broker_info",
            "kafka_topic_partitions",
            "kafka_topic_partition_current_offset",
            "kafka_topic_partition_oldest_offset",
            "kafka_topic_partition_in_sync_replica",
            "kafka_topic_partition_leader",
            "kafka_topic_partition_leader_is_preferred",
            "kafka_topic_partition_replicas",
            "kafka_topic_partition_under_replicated_partition",
            "kafka_consumergroup_current_offset",
            "kafka_consumergroup_current_offset_sum",
            "kafka_consumergroup_lag",
            "kafka_consumergroup_lag_sum",
            "kafka_consumergroup_members",
        }
    ),
}

# Grafana's built-in interval variables, replaced by a duration so the query parses.
_GRAFANA_INTERVALS = ("$__rate_interval", "$__interval", "$__range", "${__rate_interval}", "${__interval}")
_GRAFANA_VARIABLE = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$")


@dataclasses.dataclass(frozen=True)
class Selector:
    """One vector selector: the metric it names (None: no name at all) and its matchers."""

    metric: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """Our metrics: sample name -> label name -> the values seen."""

    labels: Mapping[str, Mapping[str, frozenset[str]]]

    @classmethod
    def from_registry(cls, registry: CollectorRegistry) -> Catalogue:
        found: dict[str, dict[str, set[str]]] = {}
        for family in registry.collect():
            for sample in family.samples:
                seen = found.setdefault(sample.name, {})
                for label, value in sample.labels.items():
                    seen.setdefault(label, set()).add(value)
        return cls(
            labels={
                name: {label: frozenset(values) for label, values in labels.items()}
                for name, labels in found.items()
            }
        )


def substitute_grafana_variables(expression: str) -> str:
    """The query as Prometheus would receive it: intervals become 5m, other variables "x"."""
    for interval in _GRAFANA_INTERVALS:
        expression = expression.replace(interval, "5m")
    return _GRAFANA_VARIABLE.sub("x", expression)


def selectors(expression: str) -> list[Selector]:
    """Every vector selector of a PromQL expression (raises ValueError if it does not parse)."""
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = tuple(
                (matcher.name, _operator(matcher.op), matcher.value) for matcher in node.matchers.matchers
            )
            name = node.name
            if name is None:
                name = next(
                    (value for label, op, value in matchers if label == "__name__" and op == "="), None
                )
            found.append(Selector(metric=name, matchers=matchers))
        return True

    promql_parser.walk(promql_parser.parse(expression), visit)
    return found


_OPERATORS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _operator(op: promql_parser.MatchOp) -> str:
    for known, text in _OPERATORS:
        if op == known:
            return text
    raise ValueError(f"unknown matcher operator {op}")


def problems(expression: str, catalogue: Catalogue) -> list[str]:
    """What is wrong with one expression (Grafana variables allowed): empty if nothing."""
    query = substitute_grafana_variables(expression)
    match = _LABEL_VALUES.match(query)
    if match:  # a Grafana variable query, not PromQL: check its selector and label
        if match["selector"] is None:
            return ["label_values() without a metric searches every series: name one"]
        found = _selector_problems(match["selector"], catalogue)
        if not found:
            for selector in selectors(match["selector"]):
                found += _label_problems(
                    Selector(selector.metric, ((match["label"], "=~", ".+"),)), catalogue
                )
        return found
    return _selector_problems(query, catalogue)


def _selector_problems(query: str, catalogue: Catalogue) -> list[str]:
    try:
        found = selectors(query)
    except ValueError as error:
        return [f"does not parse: {error}"]
    result: list[str] = []
    for selector in found:
        if selector.metric is None:
            result.append(f"a selector without a metric name: {selector.matchers}")
        elif selector.metric in catalogue.labels:
            result += _label_problems(selector, catalogue)
        elif not any(selector.metric in names for names in EXPORTERS.values()):
            result.append(f"unknown metric {selector.metric}: neither ours nor on an exporter's list")
    return result


def _label_problems(selector: Selector, catalogue: Catalogue) -> list[str]:
    assert selector.metric is not None
    known = catalogue.labels[selector.metric]
    result = []
    for label, op, value in selector.matchers:
        if label == "__name__" or label in TARGET_LABELS:
            continue
        if label not in known:
            result.append(f"{selector.metric} has no label {label!r} (it has {sorted(known)})")
        elif label in CLOSED_LABELS and op in ("=", "!=") and value not in known[label]:
            result.append(
                f"{selector.metric}{{{label}{op}{value!r}}}: the code never sets {label}={value!r} "
                f"(it sets {sorted(known[label])})"
            )
    return result


def external_metrics(expressions: Iterable[str]) -> set[str]:
    """The metrics of other processes these expressions name."""
    names = set()
    allowed = set().union(*EXPORTERS.values())
    for expression in expressions:
        query = substitute_grafana_variables(expression)
        match = _LABEL_VALUES.match(query)
        for selector in selectors(match["selector"] if match and match["selector"] else query):
            if selector.metric in allowed:
                names.add(selector.metric)
    return names
