"""The CRDs: generated from the models, committed in crds/, valid for Kubernetes."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from tests import ROOT
from todo_operator.cli import main
from todo_operator.commands.crds import render
from todo_operator.domain import crds


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda kind: kind.kind)
def test_committed_crds_are_up_to_date(kind: crds.Kind) -> None:
    committed = (ROOT / "crds" / f"{kind.plural}.yaml").read_text()
    assert committed == render(crds.custom_resource_definition(kind)), (
        "crds/ is out of date with the models: run `make crds` and commit the result"
    )


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda kind: kind.kind)
@pytest.mark.parametrize("kubernetes_version", ["1.31.0", "1.37.0"])
def test_crds_validate_strictly(kind: crds.Kind, kubernetes_version: str) -> None:
    crd = crds.custom_resource_definition(kind)
    # validate() raises on the first violation; it returns the schema version it used.
    assert (
        kubernetes_validate.validate(crd, kubernetes_version, strict=True)
        == kubernetes_version.rsplit(".", 1)[0]
    )


def test_strict_validation_catches_a_misspelt_field() -> None:
    crd = crds.custom_resource_definition(crds.TASK)
    crd["spec"]["versions"][0]["subresource"] = crd["spec"]["versions"][0].pop("subresources")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(crd, "1.31.0", strict=True)


def _walk(schema: object, path: str = "") -> list[tuple[str, dict[str, object]]]:
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(schema, dict):
        found.append((path, schema))
        for key, value in schema.get("properties", {}).items():
            found.extend(_walk(value, f"{path}.{key}"))
        if "items" in schema:
            found.extend(_walk(schema["items"], f"{path}[]"))
    return found


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda kind: kind.kind)
def test_schemas_are_structural(kind: crds.Kind) -> None:
    schema = crds.custom_resource_definition(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "anyOf", "allOf", "oneOf", "const", "title"} & node.keys(), path
        if node["type"] == "array":
            assert "x-kubernetes-list-type" in node, f"{path}: server-side apply needs a list type"


def test_every_kind_is_in_the_todos_category_with_short_names() -> None:
    for crd in crds.all_crds():
        names = crd["spec"]["names"]
        assert names["categories"] == ["todos"]
        assert names["shortNames"]
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert [column["name"] for column in version["additionalPrinterColumns"]][-1] == "Age"


def test_time_zones_are_checked_by_a_cel_rule_from_pinned_tzdata() -> None:
    schema = crds.openapi_schema(crds.RECURRING_TASK.spec)
    (rule,) = schema["properties"]["schedule"]["properties"]["timeZone"]["x-kubernetes-validations"]
    assert "'Europe/Berlin'" in rule["rule"]
    assert "'UTC'" in rule["rule"]
    assert "Mars/Olympus" not in rule["rule"]
    assert rule["reason"] == "FieldValueNotSupported"


def test_cli_prints_all_crds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [document["metadata"]["name"] for document in documents] == [
        "tasks.todo.dev",
        "recurringtasks.todo.dev",
        "reminders.todo.dev",
    ]
