"""The CRDs: generated from the models, committed in crds/, valid for Kubernetes."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

import kube_emulator as apiserver
from tests import ROOT
from tests.conftest import require_tools
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


# Markup that reads as noise in `kubectl explain`: reStructuredText literals and roles (any
# backtick), Markdown bold, RST directives, and line breaks (a description is one paragraph).
_MARKUP = re.compile(r"`|\*\*|:(?:class|func|meth|mod|attr|data|ref):|^\.\. |\n", re.MULTILINE)
# The API server publishes ObjectMeta's own schema, with its descriptions, for metadata.
_EXEMPT = {".metadata"}


def undescribed(schema: dict[str, Any], path: str = "") -> list[str]:
    """Every property, at any depth and in array items, without a plain-text description.

    A description that is there on any other node (an array's items, the root) must be
    plain too: kubectl explain shows it as well.
    """
    problems = []
    description = schema.get("description")
    if isinstance(description, str) and _MARKUP.search(description):
        problems.append(f"{path or '<root>'}: markup in {description!r}")
    for name, node in schema.get("properties", {}).items():
        where = f"{path}.{name}"
        if where in _EXEMPT:
            continue
        if not str(node.get("description", "")).strip():
            problems.append(f"{where}: no description")
        problems.extend(undescribed(node, where))
    if isinstance(schema.get("items"), dict):
        problems.extend(undescribed(schema["items"], f"{path}[]"))
    return problems


def _root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda kind: kind.kind)
def test_every_field_has_a_plain_description(kind: crds.Kind) -> None:
    schema = _root_schema(crds.custom_resource_definition(kind))
    assert schema["description"] == kind.description
    assert undescribed(schema) == []


def test_the_description_check_finds_what_is_missing_or_marked_up() -> None:
    handmade = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "description": "Fine.",
                "properties": {
                    "when": {"type": "string"},
                    "blank": {"type": "string", "description": "  "},
                    "items": {
                        "type": "array",
                        "description": "See :class:`Item`.",
                        "items": {
                            "type": "object",
                            "description": "One entry of ``items``.",
                            "properties": {"x": {"type": "string", "description": "**Bold**."}},
                        },
                    },
                    "wrapped": {"type": "string", "description": "Two\nlines."},
                },
            },
        },
    }
    assert undescribed(handmade) == [
        ".spec.when: no description",
        ".spec.blank: no description",
        ".spec.items: markup in 'See :class:`Item`.'",
        ".spec.items[]: markup in 'One entry of ``items``.'",
        ".spec.items[].x: markup in '**Bold**.'",
        ".spec.wrapped: markup in 'Two\\nlines.'",
    ]
    # And in a real CRD, a field deep in a list that lost its description is found.
    schema = _root_schema(crds.custom_resource_definition(crds.RECURRING_TASK))
    template = schema["properties"]["spec"]["properties"]["taskTemplate"]
    del template["properties"]["reminders"]["items"]["properties"]["before"]["description"]
    assert undescribed(schema) == [".spec.taskTemplate.reminders[].before: no description"]


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda kind: kind.kind)
def test_ready_and_its_reason_are_columns_of_plain_kubectl_get(kind: crds.Kind) -> None:
    columns = {column["name"]: column for column in kind.printer_columns}
    names = [column["name"] for column in kind.printer_columns]
    assert names.index("Ready") < names.index("Phase") < names.index("Reason")
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    # Without -o wide: a refused object shows InvalidSpec or InvalidSchedule on its row.
    assert "priority" not in columns["Ready"]
    assert "priority" not in columns["Reason"]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("recurringtasks.spec.schedule.timeZone", "The IANA time zone the schedule runs in"),
        ("tasks.spec.dueAt", "When the task is due: an RFC 3339 date-time with an offset"),
        ("reminders.spec.before", "How long before the Task's dueAt the e-mail goes out"),
        ("rtask.status.conditions.reason", "One CamelCase word saying why"),
    ],
)
def test_kubectl_explain_shows_the_descriptions(
    api_server: apiserver.ApiServerThread, tmp_path: pathlib.Path, field: str, expected: str
) -> None:
    # The real kubectl reads the schemas from the emulator's OpenAPI v3 documents.
    require_tools("kubectl")
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    result = subprocess.run(
        [str(shutil.which("kubectl")), "--kubeconfig", str(kubeconfig), "explain", field],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # kubectl wraps descriptions at its own width: compare with the lines joined.
    assert expected in " ".join(result.stdout.split())
    assert "<no description>" not in result.stdout


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
