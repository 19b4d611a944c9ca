"""Errors are proper ``Status`` objects with the real server's codes, reasons, and wording."""

from __future__ import annotations

import pytest

from tests.packages.kube_emulator.conftest import WIDGETS, Api, widget


async def test_create_existing_name_is_409_already_exists(api: Api) -> None:
    await api.post(WIDGETS, widget())
    status, body = await api.post(WIDGETS, widget())
    assert status == 409
    assert body["kind"] == "Status"
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'widgets.example.dev "w1" already exists'
    assert body["details"] == {"name": "w1", "group": "example.dev", "kind": "widgets"}


async def test_missing_object_is_404_not_found(api: Api) -> None:
    status, body = await api.get(f"{WIDGETS}/nope")
    assert status == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'widgets.example.dev "nope" not found'


async def test_create_in_missing_namespace_is_404(api: Api) -> None:
    status, body = await api.post("/apis/example.dev/v1/namespaces/ghost/widgets", widget())
    assert status == 404
    assert body["message"] == 'namespaces "ghost" not found'


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_stale_resource_version_is_409_conflict(api: Api, method: str) -> None:
    _, obj = await api.post(WIDGETS, widget())
    await api.patch(f"{WIDGETS}/w1", {"spec": {"title": "Changed"}})
    obj["spec"]["title"] = "Mine"
    if method == "PUT":
        status, body = await api.put(f"{WIDGETS}/w1", obj)
    else:
        status, body = await api.patch(
            f"{WIDGETS}/w1", {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}}
        )
    assert status == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]


async def test_failed_json_patch_test_is_422_not_500(api: Api) -> None:
    """Kopf tests /metadata/resourceVersion before it patches finalizers (kmock answered 500)."""
    await api.post(WIDGETS, widget())
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ]
    status, body = await api.patch(f"{WIDGETS}/w1", ops, content_type="application/json-patch+json")
    assert status == 422
    assert body["reason"] == "Invalid"


async def test_errors_never_leak_tracebacks(api: Api) -> None:
    await api.post(WIDGETS, widget())
    _, body = await api.post(WIDGETS, widget())
    assert "traceback" not in str(body).lower()


async def test_unknown_resource_is_404(api: Api) -> None:
    status, body = await api.get("/apis/example.dev/v1/namespaces/default/gizmos")
    assert status == 404
    assert body["kind"] == "Status"


async def test_protobuf_body_is_415(api: Api) -> None:
    status, body = await api.post(
        "/api/v1/namespaces/default/secrets",
        b"\x6b\x38\x73\x00",
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"


async def test_json_answers_carry_no_charset_parameter(api: Api) -> None:
    # Clients compare the media type exactly (lightkube maps errors to ApiError only then).
    async with api.session.get(
        f"{api.server.url}/apis/batch/v1/namespaces/default/cronjobs/nope"
    ) as response:
        assert response.status == 404
        assert response.headers["Content-Type"] == "application/json"
