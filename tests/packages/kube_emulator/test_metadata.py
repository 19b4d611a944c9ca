"""Server-set metadata: uid, timestamps, the global resourceVersion, generation, generateName."""

from __future__ import annotations

from tests.packages.kube_emulator.conftest import WIDGETS, Api, widget


async def test_create_sets_server_metadata(api: Api) -> None:
    status, obj = await api.post(WIDGETS, widget())
    assert status == 201
    meta = obj["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"
    assert int(meta["resourceVersion"]) > 0


async def test_resource_version_is_one_global_monotonic_counter(api: Api) -> None:
    versions = []
    for name in ("a", "b", "c"):
        _, obj = await api.post(WIDGETS, widget(name))
        versions.append(int(obj["metadata"]["resourceVersion"]))
    _, cm = await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm"}})
    versions.append(int(cm["metadata"]["resourceVersion"]))
    assert versions == sorted(versions)
    assert len(set(versions)) == 4


async def test_generate_name(api: Api) -> None:
    body = widget()
    body["metadata"] = {"generateName": "gen-"}
    _, obj = await api.post(WIDGETS, body)
    assert obj["metadata"]["name"].startswith("gen-")
    assert len(obj["metadata"]["name"]) == 9


async def test_generation_bumps_on_spec_change_only(api: Api) -> None:
    await api.post(WIDGETS, widget())
    _, obj = await api.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}}})
    assert obj["metadata"]["generation"] == 1
    _, obj = await api.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
    assert obj["metadata"]["generation"] == 1
    _, obj = await api.patch(f"{WIDGETS}/w1", {"spec": {"title": "Renamed"}})
    assert obj["metadata"]["generation"] == 2


async def test_generation_without_status_subresource_counts_everything_outside_metadata(api: Api) -> None:
    await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    _, obj = await api.patch("/api/v1/namespaces/default/configmaps/cm", {"data": {"a": "2"}})
    assert obj["metadata"]["generation"] == 2


async def test_noop_update_keeps_resource_version(api: Api) -> None:
    _, created = await api.post(WIDGETS, widget())
    _, patched = await api.patch(f"{WIDGETS}/w1", {"spec": {"title": "A widget"}})
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
