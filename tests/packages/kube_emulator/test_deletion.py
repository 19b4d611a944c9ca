"""Finalizers, deletion preconditions, garbage collection by owner references, namespace deletion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.packages.kube_emulator.conftest import WIDGETS, Api, widget

CMS = "/api/v1/namespaces/default/configmaps"


def owned(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    ref = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    return {"metadata": {"name": name, "ownerReferences": [ref]}}


async def test_delete_without_finalizers_removes_at_once(api: Api) -> None:
    await api.post(WIDGETS, widget())
    status, _ = await api.delete(f"{WIDGETS}/w1")
    assert status == 200
    assert (await api.get(f"{WIDGETS}/w1"))[0] == 404


async def test_finalizers_hold_the_object_until_removed(api: Api) -> None:
    body = widget()
    body["metadata"]["finalizers"] = ["example.dev/cleanup"]
    await api.post(WIDGETS, body)
    status, obj = await api.delete(f"{WIDGETS}/w1")
    assert status == 202
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    assert (await api.get(f"{WIDGETS}/w1"))[0] == 200
    await api.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": None}})
    assert (await api.get(f"{WIDGETS}/w1"))[0] == 404


async def test_no_new_finalizers_once_deletion_started(api: Api) -> None:
    body = widget()
    body["metadata"]["finalizers"] = ["a"]
    await api.post(WIDGETS, body)
    await api.delete(f"{WIDGETS}/w1")
    status, body = await api.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": ["a", "b"]}})
    assert status == 422
    assert body["details"]["causes"][0]["reason"] == "FieldValueForbidden"


async def test_delete_precondition_mismatch_is_409(api: Api) -> None:
    await api.post(WIDGETS, widget())
    status, body = await api.delete(f"{WIDGETS}/w1", {"preconditions": {"uid": "other"}})
    assert status == 409
    assert body["reason"] == "Conflict"


async def test_background_deletion_collects_dependents_recursively(api: Api) -> None:
    _, owner = await api.post(WIDGETS, widget())
    _, child = await api.post(WIDGETS, owned("child", owner) | {"spec": widget()["spec"]})
    await api.post(CMS, owned("grandchild", child))
    await api.delete(f"{WIDGETS}/w1")
    assert (await api.get(f"{WIDGETS}/child"))[0] == 404
    assert (await api.get(f"{CMS}/grandchild"))[0] == 404


async def test_dependents_with_finalizers_are_only_marked(api: Api) -> None:
    _, owner = await api.post(WIDGETS, widget())
    body = owned("dep", owner)
    body["metadata"]["finalizers"] = ["hold"]
    await api.post(CMS, body)
    await api.delete(f"{WIDGETS}/w1")
    _, dep = await api.get(f"{CMS}/dep")
    assert dep["metadata"]["deletionTimestamp"]


async def test_dependents_with_another_live_owner_survive(api: Api) -> None:
    _, first = await api.post(WIDGETS, widget("first"))
    _, second = await api.post(WIDGETS, widget("second"))
    body = owned("dep", first)
    body["metadata"]["ownerReferences"] += owned("dep", second)["metadata"]["ownerReferences"]
    await api.post(CMS, body)
    await api.delete(f"{WIDGETS}/first")
    _, dep = await api.get(f"{CMS}/dep")
    assert [ref["name"] for ref in dep["metadata"]["ownerReferences"]] == ["second"]


async def test_orphan_deletion_keeps_dependents_without_the_reference(api: Api) -> None:
    _, owner = await api.post(WIDGETS, widget())
    await api.post(CMS, owned("dep", owner))
    await api.delete(f"{WIDGETS}/w1", {"propagationPolicy": "Orphan"})
    status, dep = await api.get(f"{CMS}/dep")
    assert status == 200
    assert "ownerReferences" not in dep["metadata"]


async def test_foreground_deletion_waits_for_dependents(api: Api) -> None:
    _, owner = await api.post(WIDGETS, widget())
    body = owned("dep", owner)
    body["metadata"]["finalizers"] = ["hold"]
    await api.post(CMS, body)
    _status, obj = await api.delete(f"{WIDGETS}/w1", {"propagationPolicy": "Foreground"})
    assert "foregroundDeletion" in obj["metadata"]["finalizers"]
    assert (await api.get(f"{WIDGETS}/w1"))[0] == 200
    await api.patch(f"{CMS}/dep", {"metadata": {"finalizers": None}})
    assert (await api.get(f"{CMS}/dep"))[0] == 404
    assert (await api.get(f"{WIDGETS}/w1"))[0] == 404


async def test_namespace_deletion_deletes_its_content(api: Api) -> None:
    await api.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    await api.post("/apis/example.dev/v1/namespaces/team/widgets", widget())
    status, _ = await api.delete("/api/v1/namespaces/team")
    assert status in (200, 202)
    assert (await api.get("/apis/example.dev/v1/namespaces/team/widgets/w1"))[0] == 404
    assert (await api.get("/api/v1/namespaces/team"))[0] == 404


async def test_namespace_with_finalized_content_stays_terminating(api: Api) -> None:
    await api.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    body = widget()
    body["metadata"]["finalizers"] = ["hold"]
    await api.post("/apis/example.dev/v1/namespaces/team/widgets", body)
    await api.delete("/api/v1/namespaces/team")
    _, ns = await api.get("/api/v1/namespaces/team")
    assert ns["status"]["phase"] == "Terminating"
    status, _ = await api.post("/apis/example.dev/v1/namespaces/team/widgets", widget("w2"))
    assert status == 403
    await api.patch("/apis/example.dev/v1/namespaces/team/widgets/w1", {"metadata": {"finalizers": None}})
    assert (await api.get("/api/v1/namespaces/team"))[0] == 404


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_initial_namespaces_exist(api: Api, name: str) -> None:
    assert (await api.get(f"/api/v1/namespaces/{name}"))[0] == 200
