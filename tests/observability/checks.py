"""
Checks on the observability artifacts: Grafana dashboards, alerting rules, the
Alertmanager configuration and docs/RUNBOOK.md's anchors. Each returns the problems it
finds (empty: it passes), so that a test can feed it a bad document and see it
flagged; every check here has a negative control in the tests.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the pinned dev set
import yaml

from tests import ROOT

Json = dict[str, Any]

OBSERVABILITY = ROOT / "observability"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
DATASOURCES = OBSERVABILITY / "grafana" / "datasources.yaml"
ALERTMANAGER = OBSERVABILITY / "alertmanager" / "alertmanager.yaml"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
MONITORING = ROOT / "docs" / "MONITORING.md"
RUNBOOK_URL = "https://github.com/todo-operator/todo-operator/blob/main/docs/RUNBOOK.md"
PROMETHEUS_RULE_SCHEMA = pathlib.Path(__file__).with_name("schemas") / "prometheusrule.schema.json"

GRID_COLUMNS = 24
SEVERITIES = ("critical", "warning")
# Prometheus' duration syntax, as the PrometheusRule CRD spells it.
_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_VARIABLE_REFERENCE = re.compile(r"^\$\{?(\w+)\}?$")


def load_dashboards(directory: pathlib.Path = DASHBOARDS) -> dict[str, Json]:
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def load_yaml(path: pathlib.Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- Grafana dashboards ---------------------------------------------------------------------------


def all_panels(dashboard: Mapping[str, Any]) -> Iterator[Json]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every query: panel targets and template variable queries."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield (
                f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}",
                target.get("expr", ""),
            )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            yield f"variable {variable.get('name')}", text


def dashboard_problems(dashboard: Mapping[str, Any], *, datasource_uids: Iterable[str]) -> list[str]:
    """Structure Grafana needs, and a Prometheus data source on every panel and query.

    A data source is the dashboard's own data-source variable (type datasource, for
    Prometheus) or a uid that observability/grafana/datasources.yaml provisions.
    """
    problems: list[str] = []
    for key in ("uid", "title"):
        if not isinstance(dashboard.get(key), str) or not dashboard[key]:
            problems.append(f"no {key}")
    if len(str(dashboard.get("uid", ""))) > 40:
        problems.append("uid longer than Grafana's 40 characters")
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        problems.append(f"schemaVersion {dashboard.get('schemaVersion')!r}: want an int >= 36 (Grafana 9+)")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    datasource_variables = {
        name
        for name, v in variables.items()
        if v.get("type") == "datasource" and v.get("query") == "prometheus"
    }
    usable = set(datasource_uids)

    def check_datasource(where: str, datasource: Any) -> None:
        if not isinstance(datasource, dict) or not datasource.get("uid"):
            problems.append(f"{where}: no datasource")
            return
        if datasource.get("type") != "prometheus":
            problems.append(f"{where}: datasource type {datasource.get('type')!r}, not prometheus")
        reference = _VARIABLE_REFERENCE.match(str(datasource["uid"]))
        if reference is not None:
            if reference[1] not in datasource_variables:
                problems.append(
                    f"{where}: datasource variable ${reference[1]} is not a Prometheus data source"
                )
        elif datasource["uid"] not in usable:
            problems.append(f"{where}: datasource uid {datasource['uid']!r} is not provisioned")

    panels = list(all_panels(dashboard))
    if not panels:
        problems.append("no panels")
    ids = [panel.get("id") for panel in panels]
    for panel_id in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"panel id {panel_id} is used more than once")
    boxes: list[tuple[str, tuple[int, int, int, int]]] = []
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not isinstance(panel.get("id"), int):
            problems.append(f"{where}: id is not an integer")
        if not panel.get("title"):
            problems.append(f"{where}: no title")
        grid = panel.get("gridPos")
        if not isinstance(grid, dict) or not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: gridPos needs integer h, w, x, y")
        else:
            if grid["w"] < 1 or grid["h"] < 1 or grid["x"] < 0 or grid["y"] < 0:
                problems.append(f"{where}: gridPos {grid} has an empty or negative box")
            if grid["x"] + grid["w"] > GRID_COLUMNS:
                problems.append(f"{where}: gridPos {grid} is wider than the {GRID_COLUMNS} columns")
            boxes.append((where, (grid["x"], grid["y"], grid["w"], grid["h"])))
        if panel.get("type") == "row":
            continue  # a row only groups panels: it has no query, so no data source to name
        if not panel.get("description"):
            problems.append(f"{where}: no description (say how to read it)")
        check_datasource(where, panel.get("datasource"))
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        ref_ids = [target.get("refId") for target in targets]
        if len(set(ref_ids)) != len(ref_ids) or None in ref_ids:
            problems.append(f"{where}: refIds missing or repeated: {ref_ids}")
        for target in targets:
            check_datasource(f"{where} target {target.get('refId')}", target.get("datasource"))
            if not str(target.get("expr", "")).strip():
                problems.append(f"{where} target {target.get('refId')}: no expr")
    for index, (where, box) in enumerate(boxes):
        for other_where, other in boxes[index + 1 :]:
            if _overlap(box, other):
                problems.append(f"{where} overlaps {other_where}")
    for name, variable in variables.items():
        if variable.get("type") == "query":
            check_datasource(f"variable {name}", variable.get("datasource"))
    return problems


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def datasource_problems(provisioning: Mapping[str, Any]) -> list[str]:
    """Grafana's provisioning format: apiVersion 1, unique names and uids, the kinds we need."""
    problems = []
    if provisioning.get("apiVersion") != 1:
        problems.append("apiVersion is not 1")
    sources = provisioning.get("datasources") or []
    for key in ("name", "uid"):
        values = [source.get(key) for source in sources]
        if None in values or len(set(values)) != len(values):
            problems.append(f"datasource {key}s missing or repeated: {values}")
    types = [source.get("type") for source in sources]
    for wanted in ("prometheus", "zipkin"):
        if wanted not in types:
            problems.append(f"no {wanted} datasource")
    if sum(bool(source.get("isDefault")) for source in sources) > 1:
        problems.append("more than one default datasource")
    for source in sources:
        if not re.match(r"^https?://[^/\s]+", str(source.get("url", ""))):
            problems.append(f"datasource {source.get('name')}: url {source.get('url')!r} is not http(s)")
    return problems


# --- alerting rules -------------------------------------------------------------------------------


def markdown_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown document (code blocks skipped)."""
    anchors: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        match = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match and not in_code:
            text = re.sub(r"[`*_]|\[([^]]*)\]\([^)]*\)", r"\1", match[1]).strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


def alerting_rules(rules: Mapping[str, Any]) -> Iterator[Json]:
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            if "alert" in rule:
                yield rule


def rule_problems(rules: Mapping[str, Any], *, runbook_anchors: set[str]) -> list[str]:
    """What every alert needs: a pending period, a severity, words for people, a runbook section."""
    problems = []
    groups = rules.get("groups") or []
    if not groups:
        problems.append("no rule groups")
    group_names = [group.get("name") for group in groups]
    if len(set(group_names)) != len(group_names):
        problems.append(f"group names repeated: {group_names}")
    names = [str(rule.get("alert")) for rule in alerting_rules(rules)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"alert {name} is defined more than once")
    for group in groups:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            if "alert" not in rule:
                continue
            if not re.match(r"^Todo[A-Z][A-Za-z0-9]*$", str(name)):
                problems.append(f"{name}: alert names are CamelCase and start with Todo")
            if not _DURATION.match(str(rule.get("for", ""))) or not rule.get("for"):
                problems.append(f"{name}: no valid 'for' (a pending period such as 5m)")
            if rule.get("labels", {}).get("severity") not in SEVERITIES:
                problems.append(f"{name}: labels.severity must be one of {SEVERITIES}")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not str(annotations.get(key, "")).strip():
                    problems.append(f"{name}: no annotations.{key}")
            url = str(annotations.get("runbook_url", ""))
            base, _, anchor = url.partition("#")
            if base != RUNBOOK_URL:
                problems.append(f"{name}: runbook_url {url!r} does not point into {RUNBOOK_URL}")
            elif anchor not in runbook_anchors:
                problems.append(f"{name}: runbook_url anchor #{anchor} is not a heading of docs/RUNBOOK.md")
            elif anchor != str(name).lower():
                problems.append(f"{name}: runbook_url anchor #{anchor} is not the alert's own section")
    return problems


def schema_problems(document: Any, schema: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"/{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


# --- Alertmanager ---------------------------------------------------------------------------------

_MATCHER = re.compile(r'^\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"\s*$')
_INLINE_SECRETS = ("auth_password", "smtp_auth_password", "auth_secret", "smtp_auth_secret")


def _routes(route: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield route
    for child in route.get("routes") or []:
        yield from _routes(child)


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def alertmanager_problems(config: Mapping[str, Any], *, alert_names: Sequence[str]) -> list[str]:
    """Routes lead to receivers that exist, e-mail is complete, secrets come from files."""
    problems = []
    receivers = {receiver.get("name"): receiver for receiver in config.get("receivers") or []}
    route = config.get("route")
    if not isinstance(route, dict) or not route.get("receiver"):
        return ["no top-level route with a default receiver"]
    used = set()
    for node in _routes(route):
        receiver = node.get("receiver")
        if receiver is not None:
            used.add(receiver)
            if receiver not in receivers:
                problems.append(f"route to receiver {receiver!r}, which is not defined")
        for matcher in node.get("matchers") or []:
            if not _MATCHER.match(str(matcher)):
                problems.append(f'route matcher {matcher!r} is not label op "value"')
    for name in sorted(set(receivers) - used, key=str):
        problems.append(f"receiver {name!r} is defined but no route uses it")
    if "alertname" not in (route.get("group_by") or []):
        problems.append("the top-level route does not group by alertname")
    emails = [email for receiver in receivers.values() for email in receiver.get("email_configs") or []]
    if not emails:
        problems.append("no e-mail receiver")
    for email in emails:
        for key in ("to", "from", "smarthost"):
            if not email.get(key):
                problems.append(f"email_config without {key}")
        if not re.match(r"^[^:\s]+:\d+$", str(email.get("smarthost", ""))):
            problems.append(f"smarthost {email.get('smarthost')!r} is not host:port")
        if email.get("require_tls") is not True:
            problems.append("email_config does not require TLS")
        password_file = str(email.get("auth_password_file", ""))
        if email.get("auth_username") and not password_file.startswith("/"):
            problems.append("email_config with auth_username but no absolute auth_password_file")
    for key in _keys(config):
        if key in _INLINE_SECRETS:
            problems.append(f"{key} is inline: read secrets from a file (auth_password_file)")
    known = set(alert_names)
    for rule in config.get("inhibit_rules") or []:
        for side in ("source_matchers", "target_matchers"):
            for matcher in rule.get(side) or []:
                match = _MATCHER.match(str(matcher))
                if match is None:
                    problems.append(f'inhibit {side} {matcher!r} is not label op "value"')
                    continue
                if match["label"] == "alertname":
                    for name in match["value"].split("|"):
                        if name not in known:
                            problems.append(f"inhibit rule names alert {name!r}, which no rule defines")
    return problems
