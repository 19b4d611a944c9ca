"""
The alerting rules in their two shapes: the plain Prometheus rules file (the source)
and the Prometheus Operator PrometheusRule generated from it.

    .venv/bin/python -m tests.observability.rules --write

regenerates observability/prometheus/prometheusrule.yaml; test_rules.py checks that
the committed file is what this makes.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import yaml

from tests import ROOT

PROMETHEUS = ROOT / "observability" / "prometheus"
RULES_FILE = PROMETHEUS / "rules" / "todo-operator.rules.yaml"
PROMETHEUS_RULE = PROMETHEUS / "prometheusrule.yaml"

Json = dict[str, Any]

HEADER = (
    "# Generated from rules/todo-operator.rules.yaml (the source); do not edit.\n"
    "# Regenerate: .venv/bin/python -m tests.observability.rules --write\n"
    "# Apply into the namespace the chart is installed in: kubectl apply -n <namespace> -f this file.\n"
    "# The release label is the one kube-prometheus-stack's Prometheus selects rules by\n"
    "# (its release name); change it to yours.\n"
)


def load_rules_file(path: pathlib.Path = RULES_FILE) -> Json:
    rules: Json = yaml.safe_load(path.read_text())
    return rules


def prometheus_rule(rules: Json) -> Json:
    """The PrometheusRule that carries exactly these rule groups."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "todo-operator",
            "labels": {
                "app.kubernetes.io/name": "todo-operator",
                "app.kubernetes.io/part-of": "todo-operator",
                "release": "kube-prometheus-stack",
            },
        },
        "spec": {"groups": rules["groups"]},
    }


class _Literal(str):
    """A string written as a YAML block (|), as PromQL is written in the rules file."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def _blocks(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _blocks(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_blocks(item) for item in node]
    if isinstance(node, str) and "\n" in node:
        return _Literal(node)
    return node


def render(rules: Json) -> str:
    body = yaml.dump(_blocks(prometheus_rule(rules)), Dumper=_Dumper, sort_keys=False, width=10_000)
    return HEADER + body


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__, file=sys.stderr)
        return 2
    PROMETHEUS_RULE.write_text(render(load_rules_file()))
    print(PROMETHEUS_RULE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
