"""Discovery, OpenAPI, server-side tables, and CRDs registered at runtime."""

from __future__ import annotations

import pytest

from tests.packages.kube_emulator.conftest import WIDGET_CRD, WIDGETS, Api, widget

TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


@pytest.mark.parametrize(
    ("group_version", "plural", "kind", "namespaced"),
    [
        ("api/v1", "namespaces", "Namespace", False),
        ("api/v1", "events", "Event", True),
        ("api/v1", "configmaps", "ConfigMap", True),
        ("api/v1", "secrets", "Secret", True),
        ("api/v1", "serviceaccounts", "ServiceAccount", True),
        ("api/v1", "pods", "Pod", True),
        ("api/v1", "services", "Service", True),
        ("apis/events.k8s.io/v1", "events", "Event", True),
        ("apis/batch/v1", "jobs", "Job", True),
        ("apis/batch/v1", "cronjobs", "CronJob", True),
        ("apis/coordination.k8s.io/v1", "leases", "Lease", True),
        ("apis/apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ],
)
async def test_builtin_resources_are_discoverable(
    api: Api,
    group_version: str,
    plural: str,
    kind: str,
    namespaced: bool,
) -> None:
    _, body = await api.get(f"/{group_version}")
    [entry] = [r for r in body["resources"] if r["name"] == plural]
    assert entry["kind"] == kind
    assert entry["namespaced"] is namespaced
    assert "watch" in entry["verbs"]


async def test_custom_resource_discovery_has_names_and_categories(api: Api) -> None:
    _, groups = await api.get("/apis")
    assert "example.dev" in [group["name"] for group in groups["groups"]]
    _, body = await api.get("/apis/example.dev/v1")
    [entry] = [r for r in body["resources"] if r["name"] == "widgets"]
    assert entry["singularName"] == "widget"
    assert entry["shortNames"] == ["wdg"]
    assert entry["categories"] == ["gadgets"]


async def test_aggregated_discovery_request_gets_legacy_json(api: Api) -> None:
    accept = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    )
    async with api.session.get(api.server.url + "/apis", headers={"Accept": accept}) as response:
        assert response.content_type == "application/json"
        assert (await response.json())["kind"] == "APIGroupList"


async def test_crd_posted_at_runtime_is_served(api: Api) -> None:
    crd = {
        **WIDGET_CRD,
        "metadata": {"name": "things.other.dev"},
        "spec": {
            **WIDGET_CRD["spec"],
            "group": "other.dev",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
        },
    }
    status, created = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status == 201
    assert {c["type"] for c in created["status"]["conditions"]} == {"Established", "NamesAccepted"}
    status, _ = await api.post("/apis/other.dev/v1/namespaces/default/things", widget() | {"kind": "Thing"})
    assert status == 201
    await api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.other.dev")
    assert (await api.get("/apis/other.dev/v1/namespaces/default/things"))[0] == 404


async def test_table_from_printer_columns(api: Api) -> None:
    await api.post(WIDGETS, widget(size=4))
    await api.patch(f"{WIDGETS}/w1/status", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    _, table = await api.get(WIDGETS, headers=TABLE)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Title", "Size", "Ready", "Age"]
    [row] = table["rows"]
    assert row["cells"][:4] == ["w1", "A widget", 4, "True"]
    assert row["cells"][4].endswith("s")
    assert row["object"]["metadata"]["name"] == "w1"


async def test_openapi_v3_lists_group_versions(api: Api) -> None:
    _, root = await api.get("/openapi/v3")
    assert "apis/example.dev/v1" in root["paths"]
    _, doc = await api.get(root["paths"]["apis/example.dev/v1"]["serverRelativeURL"])
    assert "/apis/example.dev/v1/namespaces/{namespace}/widgets/{name}" in doc["paths"]
