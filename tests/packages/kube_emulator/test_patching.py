"""PUT and the four PATCH content types, and dry runs."""

from __future__ import annotations

from typing import Any

from tests.packages.kube_emulator.conftest import WIDGETS, Api, widget

PODS = "/api/v1/namespaces/default/pods"
POD: dict[str, Any] = {
    "metadata": {"name": "p"},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            },
            {"name": "sidecar", "image": "sidecar:1"},
        ]
    },
}


async def test_json_patch_operations(api: Api) -> None:
    await api.post(WIDGETS, widget(tags=["a", "b"]))
    ops = [
        {"op": "add", "path": "/spec/tags/-", "value": "c"},
        {"op": "remove", "path": "/spec/tags/0"},
        {"op": "replace", "path": "/spec/title", "value": "New"},
        {"op": "copy", "from": "/spec/title", "path": "/metadata/labels"},
    ]
    ops[-1] = {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}
    status, obj = await api.patch(f"{WIDGETS}/w1", ops, content_type="application/json-patch+json")
    assert status == 200
    assert obj["spec"]["tags"] == ["b", "c"]
    assert obj["spec"]["title"] == "New"
    assert obj["metadata"]["labels"] == {"x": "y"}


async def test_merge_patch_null_deletes_keys(api: Api) -> None:
    await api.post(WIDGETS, widget(slug="s", tags=["a"]))
    _, obj = await api.patch(f"{WIDGETS}/w1", {"spec": {"slug": None, "tags": ["z"]}})
    assert "slug" not in obj["spec"]
    assert obj["spec"]["tags"] == ["z"]


async def test_strategic_merge_patch_merges_lists_by_key(api: Api) -> None:
    await api.post(PODS, POD)
    patch = {
        "spec": {
            "containers": [
                {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}]},
                {"name": "sidecar", "$patch": "delete"},
            ],
            "$setElementOrder/containers": [{"name": "app"}],
        }
    }
    status, obj = await api.patch(f"{PODS}/p", patch, content_type="application/strategic-merge-patch+json")
    assert status == 200
    [app] = obj["spec"]["containers"]
    assert app["image"] == "app:2"
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]


async def test_strategic_merge_patch_on_custom_resource_is_415(api: Api) -> None:
    await api.post(WIDGETS, widget())
    status, body = await api.patch(
        f"{WIDGETS}/w1", {"spec": {}}, content_type="application/strategic-merge-patch+json"
    )
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"


async def test_server_side_apply_creates_then_merges_map_lists(api: Api) -> None:
    applied = widget(parts=[{"name": "a", "count": 2}])
    ssa = {"content_type": "application/apply-patch+yaml", "params": {"fieldManager": "test"}}
    status, obj = await api.patch(f"{WIDGETS}/w1", applied, **ssa)
    assert status == 200
    assert obj["metadata"]["generation"] == 1
    status, obj = await api.patch(
        f"{WIDGETS}/w1", widget(parts=[{"name": "b"}, {"name": "a", "count": 5}]), **ssa
    )
    assert obj["spec"]["parts"] == [{"name": "a", "count": 5}, {"name": "b", "count": 1}]


async def test_server_side_apply_requires_field_manager(api: Api) -> None:
    status, body = await api.patch(f"{WIDGETS}/w1", widget(), content_type="application/apply-patch+yaml")
    assert status == 422
    assert body["details"]["causes"][0]["field"] == "fieldManager"


async def test_put_replaces_the_object(api: Api) -> None:
    _, obj = await api.post(WIDGETS, widget(slug="s"))
    obj["spec"] = {"title": "Replaced", "path": "/x"}
    status, new = await api.put(f"{WIDGETS}/w1", obj)
    assert status == 200
    assert new["spec"] == {
        "title": "Replaced",
        "path": "/x",
        "color": "green",
        "size": 3,
        "immutableId": "fixed",
    }
    assert new["metadata"]["uid"] == obj["metadata"]["uid"]
    assert new["metadata"]["generation"] == 2


async def test_dry_run_validates_without_persisting(api: Api) -> None:
    status, _ = await api.post(WIDGETS, widget(), params={"dryRun": "All"})
    assert status == 201
    assert (await api.get(f"{WIDGETS}/w1"))[0] == 404
    status, _body = await api.post(WIDGETS, widget(color="pink"), params={"dryRun": "All"})
    assert status == 422
