"""
Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and
prints the columns the server chose. For custom resources those are Name,
the CRD's ``additionalPrinterColumns`` and Age (unless the CRD declares its
own), as the real server's CRD table convertor does; built-ins get Name and
Age only (the real server prints kind-specific columns).

JSONPath support is the subset printer columns use: ``.a.b``, ``.a[0]``,
``.a[*].b`` and filters like ``.status.conditions[?(@.type=="Ready")].status``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kube_emulator import resources

_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+|\*)\]|\[\?\(@\.([\w.]+)\s*==\s*(\"[^\"]*\"|'[^']*'|[^)]+)\)\]")

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "priority": 0,
    "description": "CreationTimestamp is the server time when this object was created.",
}


def jsonpath(obj: Any, path: str) -> list[Any]:
    """All values at a printer-column JSONPath (empty when absent)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    nodes = [obj]
    position = 0
    while position < len(path) and nodes:
        match = _TOKEN.match(path, position)
        if match is None:
            return []
        position = match.end()
        key, index, filter_path, filter_value = match.groups()
        found: list[Any] = []
        for node in nodes:
            if key is not None and isinstance(node, Mapping) and key in node:
                found.append(node[key])
            elif index == "*" and isinstance(node, list):
                found.extend(node)
            elif index is not None and index != "*" and isinstance(node, list) and int(index) < len(node):
                found.append(node[int(index)])
            elif filter_path is not None and isinstance(node, list):
                expected = filter_value.strip("\"'")
                found.extend(item for item in node if _str(jsonpath(item, "." + filter_path)) == expected)
        nodes = found
    return nodes


def _str(values: Sequence[Any]) -> str:
    return ",".join(v if isinstance(v, str) else json.dumps(v) for v in values)


def human_age(timestamp: str, now: datetime.datetime) -> str:
    """As ``k8s.io/apimachinery/pkg/util/duration.HumanDuration`` (roughly)."""
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "<invalid>"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    return f"{days}d" if days < 365 * 2 else f"{days // 365}y"


def columns_for(rt: resources.ResourceType) -> list[Mapping[str, Any]]:
    declared = list(rt.printer_columns)
    if not any(column.get("name") == "Age" for column in declared):
        declared.append(AGE_COLUMN)
    return [NAME_COLUMN, *declared]


def _cell(obj: Mapping[str, Any], column: Mapping[str, Any], now: datetime.datetime) -> Any:
    if column is NAME_COLUMN:
        return obj["metadata"]["name"]
    values = jsonpath(obj, column.get("jsonPath", ""))
    if not values:
        return None
    if column.get("type") == "date":
        return human_age(str(values[0]), now) if isinstance(values[0], str) else None
    if len(values) == 1 and column.get("type") in ("integer", "number", "boolean"):
        return values[0]
    return _str(values)


def table(
    rt: resources.ResourceType,
    objects: Sequence[Mapping[str, Any]],
    *,
    resource_version: str,
    now: datetime.datetime,
) -> dict[str, Any]:
    columns = columns_for(rt)
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "Table",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": column["name"],
                "type": "string" if column.get("type") == "date" else column.get("type", "string"),
                "format": column.get("format", ""),
                "description": column.get("description", ""),
                "priority": column.get("priority", 0),
            }
            for column in columns
        ],
        "rows": [
            {
                "cells": [_cell(obj, column, now) for column in columns],
                "object": {
                    "apiVersion": "meta.k8s.io/v1",
                    "kind": "PartialObjectMetadata",
                    "metadata": obj["metadata"],
                },
            }
            for obj in objects
        ],
    }
