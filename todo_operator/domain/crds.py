"""CustomResourceDefinitions generated from the pydantic models.

The models in :mod:`todo_operator.domain.resources` are the single source of
truth; ``crds/*.yaml`` are generated from them (``todo-operator crds``) and a
test fails when the committed files drift. Pydantic emits JSON Schema (draft
2020-12); a CRD wants an OpenAPI v3 *structural* schema, so this module
translates: references are inlined, ``anyOf [X, null]`` becomes an optional
``X``, ``const`` becomes a one-value ``enum``, ``additionalProperties: false``
is dropped (structural schemas forbid it beside ``properties``; the API
server prunes unknown fields instead) and titles go. Descriptions (the models'
field docstrings) are reflowed into one line: ``kubectl explain`` wraps them
itself.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from todo_operator.domain import resources, zones

JsonSchema = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Kind:
    """Everything about one resource kind that is not in its spec/status models."""

    kind: str
    description: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: tuple[dict[str, Any], ...]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{resources.GROUP}"


def _column(name: str, json_path: str, *, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        column["priority"] = priority  # shown with `kubectl get -o wide` only
    return column


_READY_CONDITION = '.status.conditions[?(@.type=="Ready")]'
# Ready before Phase, as `kubectl get pods` has READY before STATUS. Reason is shown in plain
# `kubectl get`, not only with -o wide: an object the operator refused has no phase (or an old
# one), and Ready False alone would not say why; InvalidSpec or InvalidSchedule on its row does.
_READY = _column("Ready", f"{_READY_CONDITION}.status")
_REASON = _column("Reason", f"{_READY_CONDITION}.reason")
_AGE = _column("Age", ".metadata.creationTimestamp", type_="date")

TASK = Kind(
    kind="Task",
    description="One thing to do, with an owner, a priority, a due time and reminders.",
    plural="tasks",
    singular="task",
    short_names=("todo",),
    spec=resources.TaskSpec,
    status=resources.TaskStatus,
    printer_columns=(
        _column("Title", ".spec.title"),
        _column("Priority", ".spec.priority"),
        _column("Due", ".spec.dueAt"),
        _READY,
        _column("Phase", ".status.phase"),
        _REASON,
        _column("Owner", ".spec.owner", priority=1),
        _column("Recurring", ".status.recurringTask", priority=1),
        _AGE,
    ),
)
RECURRING_TASK = Kind(
    kind="RecurringTask",
    description="A schedule (RFC 5545 RRULE or a simple 'every') plus a template for its Task occurrences.",
    plural="recurringtasks",
    singular="recurringtask",
    short_names=("rtask", "rt"),
    spec=resources.RecurringTaskSpec,
    status=resources.RecurringTaskStatus,
    printer_columns=(
        _column("Title", ".spec.taskTemplate.title"),
        _column("Next Due", ".status.nextDueAt"),
        _column("Current", ".status.currentTask"),
        _READY,
        _column("Phase", ".status.phase"),
        _REASON,
        _column("Occurrences", ".status.occurrences", type_="integer", priority=1),
        _column("Rule", ".status.rule", priority=1),
        _AGE,
    ),
)
REMINDER = Kind(
    kind="Reminder",
    description="One e-mail notification about a Task at one instant.",
    plural="reminders",
    singular="reminder",
    short_names=("rem",),
    spec=resources.ReminderSpec,
    status=resources.ReminderStatus,
    printer_columns=(
        _column("Task", ".spec.taskRef.name"),
        _column("Fire At", ".status.fireAt"),
        _READY,
        _column("Phase", ".status.phase"),
        _REASON,
        _column("Attempts", ".status.attempts", type_="integer", priority=1),
        _AGE,
    ),
)
KINDS: tuple[Kind, ...] = (TASK, RECURRING_TASK, REMINDER)


# What controller-gen writes for every CRD: kubectl explain shows it at the top level.
_API_VERSION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values."
)
_KIND = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer "
    "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase."
)


def _structural(node: Any, defs: dict[str, JsonSchema], *, keep_defaults: bool) -> Any:
    """Translate one JSON Schema node (recursively) into OpenAPI v3 structural form."""
    if isinstance(node, list):
        return [_structural(item, defs, keep_defaults=keep_defaults) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs, keep_defaults=keep_defaults)
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        options = [option for option in any_of if option != {"type": "null"}]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _structural({**options[0], **rest}, defs, keep_defaults=keep_defaults)
    result: JsonSchema = {}
    for key, value in node.items():
        if key in {"title", "additionalProperties"} and (key == "title" or value is False):
            continue
        if key == "default" and (not keep_defaults or value is None):
            continue
        if key == "const":
            result["enum"] = [value]
        elif key == "description" and isinstance(value, str):
            result[key] = " ".join(value.split())
        elif key == "x-todo-time-zone":
            # A CEL membership rule rather than an enum: the API server then answers
            # "unknown time zone 'Mars/Olympus'" instead of listing 600 supported values.
            names = ", ".join(f"'{zone}'" for zone in zones.known_time_zones())
            result["x-kubernetes-validations"] = [
                {
                    "rule": f"self in [{names}]",
                    "messageExpression": (
                        # The words of domain/zones.py, less the suggestion (CEL has no difflib).
                        "\"unknown time zone '\" + self + \"' (use an IANA name such as 'Europe/Berlin')\""
                    ),
                    "reason": "FieldValueNotSupported",
                }
            ]
        elif key == "properties":
            result[key] = {
                name: _structural(schema, defs, keep_defaults=keep_defaults) for name, schema in value.items()
            }
        else:
            result[key] = _structural(value, defs, keep_defaults=keep_defaults)
    if "properties" in result:
        result.setdefault("type", "object")
    return result


def openapi_schema(model: type[BaseModel], *, keep_defaults: bool = True) -> JsonSchema:
    """The structural OpenAPI v3 schema of a model, as a CRD embeds it."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, JsonSchema] = schema.pop("$defs", {})
    structural: JsonSchema = _structural(schema, defs, keep_defaults=keep_defaults)
    return structural


def custom_resource_definition(kind: Kind) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {
                "app.kubernetes.io/name": "todo-operator",
                "app.kubernetes.io/part-of": "todo-operator",
            },
        },
        "spec": {
            "group": resources.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": ["todos"],
            },
            "versions": [
                {
                    "name": resources.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(kind.printer_columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": _API_VERSION},
                                "kind": {"type": "string", "description": _KIND},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(kind.spec),
                                # Status defaults would be stamped on every status write: leave them out.
                                "status": openapi_schema(kind.status, keep_defaults=False),
                            },
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [custom_resource_definition(kind) for kind in KINDS]
