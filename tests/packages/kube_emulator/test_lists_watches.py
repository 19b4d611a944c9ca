"""Lists and watches: kinds, resourceVersions, selectors, resuming, expiry, timeouts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import kube_emulator as apiserver
from tests.packages.kube_emulator.conftest import WIDGET_CRD, WIDGETS, Api, widget


async def watch(api: Api, path: str, **params: str) -> list[dict[str, Any]]:
    """Collect a watch stream until the server ends it (always pass timeoutSeconds)."""
    async with api.session.get(api.server.url + path, params={"watch": "true", **params}) as response:
        return [json.loads(line) for line in (await response.read()).splitlines() if line.strip()]


async def test_list_has_kind_api_version_and_current_resource_version(api: Api) -> None:
    _, obj = await api.post(WIDGETS, widget())
    _, body = await api.get(WIDGETS)
    assert body["kind"] == "WidgetList"
    assert body["apiVersion"] == "example.dev/v1"
    assert body["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert [item["metadata"]["name"] for item in body["items"]] == ["w1"]


async def test_namespaces_can_be_listed(api: Api) -> None:
    """kmock's path parser failed on /api/v1/namespaces."""
    _, body = await api.get("/api/v1/namespaces")
    assert {ns["metadata"]["name"] for ns in body["items"]} >= {"default", "kube-system", "kube-public"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a"]),
        ("tier==web", ["a"]),
        ("tier!=web", ["b", "c"]),
        ("tier in (web,db)", ["a", "b"]),
        ("tier notin (web)", ["b", "c"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c"]),
        ("tier=db,env=prod", ["b"]),
    ],
)
async def test_label_selectors(api: Api, selector: str, expected: list[str]) -> None:
    for name, labels in {"a": {"tier": "web"}, "b": {"tier": "db", "env": "prod"}, "c": {}}.items():
        body = widget(name)
        body["metadata"]["labels"] = labels
        await api.post(WIDGETS, body)
    _, body = await api.get(WIDGETS, params={"labelSelector": selector})
    assert [item["metadata"]["name"] for item in body["items"]] == expected


async def test_field_selectors_on_event_involved_object(api: Api) -> None:
    events = "/api/v1/namespaces/default/events"
    for name in ("x", "y"):
        await api.post(
            events,
            {
                "metadata": {"generateName": "ev-"},
                "reason": "Test",
                "involvedObject": {"kind": "Widget", "name": name, "namespace": "default"},
            },
        )
    _, body = await api.get(
        events, params={"fieldSelector": "involvedObject.name=x,involvedObject.kind=Widget"}
    )
    assert [item["involvedObject"]["name"] for item in body["items"]] == ["x"]


async def test_field_selector_on_metadata_name(api: Api) -> None:
    await api.post(WIDGETS, widget("a"))
    await api.post(WIDGETS, widget("b"))
    _, body = await api.get(WIDGETS, params={"fieldSelector": "metadata.name!=a"})
    assert [item["metadata"]["name"] for item in body["items"]] == ["b"]


async def test_watch_without_version_starts_with_existing_objects(api: Api) -> None:
    await api.post(WIDGETS, widget())
    events = await watch(api, WIDGETS, timeoutSeconds="0.2")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1")]


async def test_watch_resumes_after_a_resource_version(api: Api) -> None:
    _, obj = await api.post(WIDGETS, widget())
    await api.patch(f"{WIDGETS}/w1", {"spec": {"title": "T"}})
    await api.delete(f"{WIDGETS}/w1")
    events = await watch(
        api, WIDGETS, timeoutSeconds="0.2", resourceVersion=obj["metadata"]["resourceVersion"]
    )
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert versions[0] > int(obj["metadata"]["resourceVersion"])


async def test_watch_from_a_compacted_version_gets_410_gone(api: Api) -> None:
    async with apiserver.serve(crds=[WIDGET_CRD], event_log_size=2) as server:
        small = Api(api.session, server)
        for name in ("a", "b", "c", "d"):
            await small.post(WIDGETS, widget(name))
        events = await watch(small, WIDGETS, timeoutSeconds="1", resourceVersion="1")
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


async def test_watch_sees_live_changes_and_ends_at_timeout(api: Api) -> None:
    task = asyncio.create_task(watch(api, WIDGETS, timeoutSeconds="0.5"))
    await asyncio.sleep(0.1)  # let the watch start; its timeout ends it
    await api.post(WIDGETS, widget())
    events = await asyncio.wait_for(task, timeout=5)
    assert [e["type"] for e in events] == ["ADDED"]


async def test_watch_applies_selectors_with_transitions(api: Api) -> None:
    _, obj = await api.post(WIDGETS, widget())
    rv = obj["metadata"]["resourceVersion"]
    await api.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"app": "x"}}})
    await api.patch(f"{WIDGETS}/w1", {"spec": {"title": "T"}})
    await api.patch(f"{WIDGETS}/w1", {"metadata": {"labels": None}})
    events = await watch(api, WIDGETS, timeoutSeconds="0.2", resourceVersion=rv, labelSelector="app=x")
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


async def test_watch_per_namespace(api: Api) -> None:
    await api.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    await api.post(WIDGETS, widget("here"))
    await api.post("/apis/example.dev/v1/namespaces/other/widgets", widget("there"))
    events = await watch(api, "/apis/example.dev/v1/namespaces/other/widgets", timeoutSeconds="0.2")
    assert [e["object"]["metadata"]["name"] for e in events] == ["there"]
    events = await watch(api, "/apis/example.dev/v1/widgets", timeoutSeconds="0.2")
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["here", "there"]
