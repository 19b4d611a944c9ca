"""The status subresource: spec and status are written through different endpoints."""

from __future__ import annotations

from tests.packages.kube_emulator.conftest import WIDGETS, Api, widget


async def test_create_drops_status_of_custom_resources(api: Api) -> None:
    body = widget()
    body["status"] = {"phase": "Ready"}
    _, obj = await api.post(WIDGETS, body)
    assert "status" not in obj


async def test_main_resource_ignores_status_changes(api: Api) -> None:
    await api.post(WIDGETS, widget())
    _, obj = await api.patch(f"{WIDGETS}/w1", {"spec": {"title": "T"}, "status": {"phase": "Ready"}})
    assert obj["spec"]["title"] == "T"
    assert "status" not in obj


async def test_status_endpoint_changes_only_status(api: Api) -> None:
    await api.post(WIDGETS, widget())
    _, obj = await api.patch(
        f"{WIDGETS}/w1/status",
        {"spec": {"title": "T"}, "metadata": {"labels": {"a": "b"}}, "status": {"phase": "Ready"}},
    )
    assert obj["status"] == {"phase": "Ready"}
    assert obj["spec"]["title"] == "A widget"
    assert "labels" not in obj["metadata"]


async def test_status_is_validated_against_the_status_schema(api: Api) -> None:
    await api.post(WIDGETS, widget())
    status, body = await api.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "Bogus"}})
    assert status == 422
    assert body["details"]["causes"][0]["field"] == "status.phase"


async def test_discovery_lists_the_status_subresource(api: Api) -> None:
    _, body = await api.get("/apis/example.dev/v1")
    names = {resource["name"] for resource in body["resources"]}
    assert names == {"widgets", "widgets/status"}
