"""The Grafana dashboards: valid dashboard JSON, a Prometheus data source everywhere, and the
chart's ConfigMaps carrying exactly the files of observability/grafana/dashboards."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.manifests import rendering
from tests.observability import checks

DASHBOARDS = checks.load_dashboards()
DATASOURCES = checks.load_yaml(checks.DATASOURCES)
PROVISIONED_PROMETHEUS = {
    source["uid"] for source in DATASOURCES["datasources"] if source.get("type") == "prometheus"
}
# What issue #8 asks the dashboards to show, as words their panel titles must contain.
REQUIRED_PANELS = {
    "operator-overview.json": ["replicas up", "scheduler pass", "Handler errors", "5xx ratio", "restarts"],
    "recurring-tasks.json": ["Created", "Next occurrence", "completed", "Ended"],
    "reminders.json": ["Sent", "Delivery lag", "Failed"],
    "events.json": [
        "Published per second",
        "Outbox lag",
        "dead letters",
        "Dapr publish success",
        "Publish latency",
        "Consumer lag",
        "Brokers",
        "Under-replicated",
    ],
}


def _configmaps(objects: list[rendering.Json]) -> list[rendering.Json]:
    return [
        obj
        for obj in objects
        if obj["kind"] == "ConfigMap" and obj["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_is_well_formed(name: str) -> None:
    assert checks.dashboard_problems(DASHBOARDS[name], datasource_uids=PROVISIONED_PROMETHEUS) == []


@pytest.mark.parametrize("name", sorted(REQUIRED_PANELS))
def test_dashboard_shows_what_the_issue_asks(name: str) -> None:
    titles = " | ".join(str(panel.get("title")) for panel in checks.all_panels(DASHBOARDS[name]))
    missing = [words for words in REQUIRED_PANELS[name] if words.lower() not in titles.lower()]
    assert missing == [], titles


def test_dashboards_have_distinct_uids_and_titles_and_a_shared_tag() -> None:
    uids = [dashboard["uid"] for dashboard in DASHBOARDS.values()]
    titles = [dashboard["title"] for dashboard in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)
    assert all("todo-operator" in dashboard.get("tags", []) for dashboard in DASHBOARDS.values())
    assert set(DASHBOARDS) == set(REQUIRED_PANELS)


def test_datasources_provision_prometheus_and_zipkin() -> None:
    assert checks.datasource_problems(DATASOURCES) == []


def test_the_chart_dashboards_link_to_the_source() -> None:
    link = rendering.CHART / "files" / "dashboards"
    assert link.is_symlink()
    assert link.resolve() == checks.DASHBOARDS.resolve()


def test_configmaps_carry_exactly_the_dashboard_files(chart_renders: dict[str, list[rendering.Json]]) -> None:
    configmaps = _configmaps(chart_renders["dashboards"])
    carried = {key: value for cm in configmaps for key, value in cm["data"].items()}
    files = {path.name: path.read_text() for path in sorted(checks.DASHBOARDS.glob("*.json"))}
    assert carried == files
    for configmap in configmaps:
        assert len(configmap["data"]) == 1  # one dashboard per ConfigMap, far below the 1 MiB limit
        assert configmap["metadata"]["annotations"] == {"grafana_folder": "todo"}
        assert configmap["metadata"]["namespace"] == "todo"


def test_dashboards_are_off_by_default(chart_renders: dict[str, list[rendering.Json]]) -> None:
    assert _configmaps(chart_renders["defaults"]) == []


# --- negative controls ---------------------------------------------------------------------------


def _first_panel_with_targets(dashboard: rendering.Json) -> rendering.Json:
    return next(panel for panel in checks.all_panels(dashboard) if panel.get("targets"))


def _drop_panel_datasource(d: rendering.Json) -> None:
    del _first_panel_with_targets(d)["datasource"]


def _drop_target_datasource(d: rendering.Json) -> None:
    del _first_panel_with_targets(d)["targets"][0]["datasource"]


def _unprovisioned_datasource(d: rendering.Json) -> None:
    _first_panel_with_targets(d)["datasource"] = {"type": "prometheus", "uid": "somewhere-else"}


def _undefined_variable(d: rendering.Json) -> None:
    _first_panel_with_targets(d)["targets"][0]["datasource"] = {"type": "prometheus", "uid": "${prom}"}


def _repeat_an_id(d: rendering.Json) -> None:
    d["panels"][1]["id"] = d["panels"][0]["id"]


def _drop_grid(d: rendering.Json) -> None:
    del _first_panel_with_targets(d)["gridPos"]


def _overlap(d: rendering.Json) -> None:
    d["panels"][2]["gridPos"] = dict(d["panels"][1]["gridPos"])


def _too_wide(d: rendering.Json) -> None:
    _first_panel_with_targets(d)["gridPos"]["w"] = 30


def _string_schema_version(d: rendering.Json) -> None:
    d["schemaVersion"] = "39"


def _no_description(d: rendering.Json) -> None:
    _first_panel_with_targets(d)["description"] = ""


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        (_drop_panel_datasource, "no datasource"),
        (_drop_target_datasource, "target A: no datasource"),
        (_unprovisioned_datasource, "is not provisioned"),
        (_undefined_variable, "$prom is not a Prometheus data source"),
        (_repeat_an_id, "used more than once"),
        (_drop_grid, "gridPos needs"),
        (_overlap, "overlaps"),
        (_too_wide, "wider than"),
        (_string_schema_version, "schemaVersion"),
        (_no_description, "no description"),
    ],
)
def test_a_broken_dashboard_is_reported(break_it: Callable[[rendering.Json], None], complaint: str) -> None:
    dashboard = copy.deepcopy(DASHBOARDS["operator-overview.json"])
    break_it(dashboard)
    found = checks.dashboard_problems(dashboard, datasource_uids=PROVISIONED_PROMETHEUS)
    assert any(complaint in problem for problem in found), found


def test_broken_datasources_are_reported() -> None:
    broken = copy.deepcopy(DATASOURCES)
    broken["datasources"] = [s for s in broken["datasources"] if s["type"] != "zipkin"]
    broken["datasources"].append(dict(broken["datasources"][0]))
    found = checks.datasource_problems(broken)
    assert any("no zipkin" in p for p in found), found
    assert any("repeated" in p for p in found), found
    assert any("more than one default" in p for p in found), found
