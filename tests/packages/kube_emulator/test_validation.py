"""Custom resources are defaulted, pruned and validated against the CRD's openAPIV3Schema and CEL rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.packages.kube_emulator.conftest import WIDGETS, Api, widget


@pytest.mark.parametrize(
    ("spec", "field", "reason", "message"),
    [
        (
            {"color": "pink"},
            "spec.color",
            "FieldValueNotSupported",
            'Unsupported value: "pink": supported values: "red", "green", "blue"',
        ),
        (
            {"title": ""},
            "spec.title",
            "FieldValueInvalid",
            'Invalid value: "": spec.title in body should be at least 1 chars long',
        ),
        ({"title": "x" * 21}, "spec.title", "FieldValueTooLong", "Too long: may not be more than 20 bytes"),
        (
            {"size": 0},
            "spec.size",
            "FieldValueInvalid",
            "Invalid value: 0: spec.size in body should be greater than or equal to 1",
        ),
        (
            {"size": 11},
            "spec.size",
            "FieldValueInvalid",
            "Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        (
            {"ratio": 1},
            "spec.ratio",
            "FieldValueInvalid",
            "Invalid value: 1: spec.ratio in body should be less than 1",
        ),
        (
            {"size": "big"},
            "spec.size",
            "FieldValueInvalid",
            'Invalid value: "string": spec.size in body must be of type integer: "string"',
        ),
        (
            {"slug": "Bad Slug"},
            "spec.slug",
            "FieldValueInvalid",
            "Invalid value: \"Bad Slug\": spec.slug in body should match '^[a-z][a-z0-9-]*$'",
        ),
        (
            {"dueAt": "tomorrow"},
            "spec.dueAt",
            "FieldValueInvalid",
            'Invalid value: "tomorrow": spec.dueAt in body must be of type date-time: "tomorrow"',
        ),
        (
            {"tags": ["a", "b", "c", "d"]},
            "spec.tags",
            "FieldValueTooMany",
            "Too many: 4: must have at most 3 items",
        ),
        ({"tags": ["a", "a"]}, "spec.tags[1]", "FieldValueDuplicate", 'Duplicate value: "a"'),
        (
            {"parts": [{"name": "a"}, {"name": "a"}]},
            "spec.parts[1]",
            "FieldValueDuplicate",
            'Duplicate value: {name: "a"}',
        ),
        (
            {"parts": []},
            "spec.parts",
            "FieldValueInvalid",
            "Invalid value: 0: spec.parts in body should have at least 1 items",
        ),
        ({"parts": [{"count": 1}]}, "spec.parts[0].name", "FieldValueRequired", "Required value"),
        (
            {"labels": {"a": "1", "b": "2", "c": "3", "d": "4"}},
            "spec.labels",
            "FieldValueTooMany",
            "Too many: 4: must have at most 3 items",
        ),
        (
            {"labels": {"a": "toolong"}},
            "spec.labels.a",
            "FieldValueTooLong",
            "Too long: may not be more than 5 bytes",
        ),
        (
            {"title": None},
            "spec.title",
            "FieldValueInvalid",
            'Invalid value: "null": spec.title in body must be of type string: "null"',
        ),
        (
            {"port": True},
            "spec.port",
            "FieldValueInvalid",
            'Invalid value: "boolean": spec.port in body must be of type integer or string: "boolean"',
        ),
    ],
)
async def test_schema_violation_is_422_naming_the_field(
    api: Api,
    spec: dict[str, Any],
    field: str,
    reason: str,
    message: str,
) -> None:
    status, body = await api.post(WIDGETS, widget(**spec))
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"] == [{"reason": reason, "field": field, "message": message}]
    assert body["message"] == f'Widget.example.dev "w1" is invalid: {field}: {message}'


@pytest.mark.parametrize(
    "spec",
    [
        {"note": None},
        {"port": 8080},
        {"port": "http"},
        {"extra": {"any": {"thing": 1}}},
        {"dueAt": "2026-12-10T09:00:00+01:00"},
        {"ratio": 0.5},
    ],
)
async def test_valid_values_are_accepted(api: Api, spec: dict[str, Any]) -> None:
    status, obj = await api.post(WIDGETS, widget(**spec))
    assert status == 201, obj
    assert {key: obj["spec"][key] for key in spec} == spec


async def test_required_field_missing(api: Api) -> None:
    body = widget()
    del body["spec"]["title"]
    status, body = await api.post(WIDGETS, body)
    assert status == 422
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "field": "spec.title", "message": "Required value"}
    ]


async def test_all_violations_are_reported(api: Api) -> None:
    status, body = await api.post(WIDGETS, widget(color="pink", size=99, slug="!"))
    assert status == 422
    assert {cause["field"] for cause in body["details"]["causes"]} == {"spec.color", "spec.size", "spec.slug"}
    assert body["message"].startswith('Widget.example.dev "w1" is invalid: [')


async def test_defaults_are_applied(api: Api) -> None:
    _, obj = await api.post(WIDGETS, widget(parts=[{"name": "a"}]))
    assert obj["spec"]["color"] == "green"
    assert obj["spec"]["size"] == 3
    assert obj["spec"]["parts"] == [{"name": "a", "count": 1}]


async def test_unknown_fields_are_pruned(api: Api) -> None:
    _, obj = await api.post(WIDGETS, widget(bogus=1, extra={"kept": True}))
    assert "bogus" not in obj["spec"]
    assert obj["spec"]["extra"] == {"kept": True}


async def test_unknown_fields_are_rejected_when_strict(api: Api) -> None:
    status, body = await api.post(WIDGETS, widget(bogus=1), params={"fieldValidation": "Strict"})
    assert status == 400
    assert 'unknown field "spec.bogus"' in body["message"]


@pytest.mark.parametrize("spec", [{"url": None}, {"path": "/p"}])
async def test_cel_rule_with_message_and_field_path(api: Api, spec: dict[str, Any]) -> None:
    body = widget(**spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    status, body = await api.post(WIDGETS, body)
    assert status == 422
    [cause] = body["details"]["causes"]
    assert cause["field"] == "spec.url"
    assert cause["message"].endswith("exactly one of url and path must be set")


async def test_cel_transition_rule_runs_on_update_only(api: Api) -> None:
    status, _ = await api.post(WIDGETS, widget(immutableId="one"))
    assert status == 201
    status, body = await api.patch(f"{WIDGETS}/w1", {"spec": {"immutableId": "two"}})
    assert status == 422
    assert "immutableId is immutable" in body["message"]


async def test_cel_rule_that_fails_to_evaluate_is_422_naming_the_rule(server: Any, api: Api) -> None:
    import copy

    from tests.packages.kube_emulator.conftest import WIDGET_CRD

    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gizmos.example.dev"
    crd["spec"]["names"] = {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"}
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "x-kubernetes-validations"
    ] = [{"rule": "self.missing.size() > 0"}]
    status, _ = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status == 201
    status, body = await api.post(
        "/apis/example.dev/v1/namespaces/default/gizmos", widget() | {"kind": "Gizmo"}
    )
    assert status == 422
    assert "self.missing.size() > 0" in body["details"]["causes"][0]["message"]
