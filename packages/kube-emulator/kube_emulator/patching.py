"""
The four PATCH flavours of the API server, chosen by ``Content-Type``.

Stock kmock merges every patch body into the object as a plain dict merge. The
real server applies:

* ``application/json-patch+json`` — RFC 6902 operations; a failed ``test``
  (Kopf tests ``/metadata/resourceVersion`` before touching finalizers) is a
  422, not a 500.
* ``application/merge-patch+json`` — RFC 7386: maps merge, ``null`` deletes,
  lists are replaced.
* ``application/strategic-merge-patch+json`` — built-in kinds only: lists of
  objects merge by their merge key (containers, env and volumes by ``name``…),
  ``$patch: delete``/``replace`` directives, ``$setElementOrder`` and
  ``$retainKeys`` accepted and ignored. The merge keys come from a fixed
  table keyed by field name (enough for what kubectl sends), not from the
  Go struct tags. Custom resources answer 415, as on a real server.
* ``application/apply-patch+yaml`` — server-side apply, simplified: no
  ``managedFields`` are tracked, so there are no conflicts (``force`` is
  accepted and has no effect) and a field dropped from a later applied
  configuration is kept rather than removed. Maps merge; lists merge by
  ``x-kubernetes-list-map-keys`` (custom resources) or the strategic merge
  key (built-ins); ``x-kubernetes-list-type: set`` lists are unioned; any
  other list is replaced (atomic).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

# Strategic merge keys of built-in list fields, by field name (from the k8s.io/api struct tags).
STRATEGIC_MERGE_KEYS: Mapping[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "secrets": "name",  # ServiceAccount.secrets
}


class PatchError(Exception):
    """The patch cannot be applied to this object (answered 422)."""


class PatchTestFailed(PatchError):
    """A JSON-patch ``test`` operation did not match."""


# --- RFC 6902 JSON patch ---------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _resolve_parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        node = _child(node, part, path)
    return node


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise PatchError(f"path {path!r} does not exist in the object")


def _list_index(node: list[Any], part: str, path: str, *, for_insert: bool) -> int:
    if for_insert and part == "-":
        return len(node)
    if not part.isdigit() or int(part) > len(node) - (0 if for_insert else 1):
        raise PatchError(f"index out of range in path {path!r}")
    return int(part)


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _pointer(path):
        node = _child(node, part, path)
    return node


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _resolve_parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[parts[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, parts[-1], path, for_insert=True), value)
    else:
        raise PatchError(f"cannot add to a scalar at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _resolve_parent(doc, parts, path)
    if isinstance(parent, dict) and parts[-1] in parent:
        return parent.pop(parts[-1])
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, parts[-1], path, for_insert=False))
    raise PatchError(f"path {path!r} does not exist in the object")


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply RFC 6902 operations to a copy of ``doc``."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"malformed JSON patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        match op:
            case "add":
                doc = _add(doc, path, copy.deepcopy(operation.get("value")))
            case "remove":
                _remove(doc, path)
            case "replace":
                _remove(doc, path) if _pointer(path) else None
                doc = _add(doc, path, copy.deepcopy(operation.get("value")))
            case "move":
                value = _remove(doc, operation["from"])
                doc = _add(doc, path, value)
            case "copy":
                doc = _add(doc, path, copy.deepcopy(_get(doc, operation["from"])))
            case "test":
                try:
                    actual = _get(doc, path)
                except PatchError:
                    actual = None
                if actual != operation.get("value"):
                    raise PatchTestFailed(f"testing value {path} failed: test failed")
            case _:
                raise PatchError(f"unsupported JSON patch operation: {op!r}")
    return doc


# --- RFC 7386 JSON merge patch ---------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: returns a new document; ``null`` in the patch deletes the key."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- strategic merge patch (built-in kinds) -----------------------------------------------------------


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith(("$setElementOrder/", "$retainKeys", "$deleteFromPrimitiveList/")):
                if key.startswith("$deleteFromPrimitiveList/"):
                    name = key.split("/", 1)[1]
                    result[name] = [item for item in result.get(name, []) if item not in value]
                continue
            if value is None:
                result.pop(key, None)
            else:
                merged = strategic_merge_patch(result.get(key), value, key)
                if merged is None:
                    result.pop(key, None)
                else:
                    result[key] = merged
        return result
    if isinstance(patch, list):
        merge_key = _strategic_key(field, patch)
        if merge_key is None or not isinstance(target, list):
            return [item for item in copy.deepcopy(patch) if not _is_directive(item)]
        return _merge_list_by_key(target, patch, merge_key)
    return copy.deepcopy(patch)


def _strategic_key(field: str, items: Sequence[Any]) -> str | None:
    if field == "ports":  # containers[].ports merge by containerPort, Service.spec.ports by port
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return STRATEGIC_MERGE_KEYS.get(field)


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item and len(item) == 1


def _merge_list_by_key(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    def identity(item: Any) -> Any:
        return item.get(key) if isinstance(item, dict) else item

    result = copy.deepcopy(target)
    for item in patch:
        if isinstance(item, dict) and item.get("$patch") == "replace" and len(item) == 1:
            result = []
            continue
        position = next((i for i, old in enumerate(result) if identity(old) == identity(item)), None)
        if isinstance(item, dict) and item.get("$patch") == "delete":
            if position is not None:
                result.pop(position)
        elif position is None:
            result.append(strategic_merge_patch(None, item))
        else:
            result[position] = strategic_merge_patch(result[position], item)
    return result


# --- server-side apply (simplified) --------------------------------------------------------------------


def apply_patch(live: Any, applied: Any, schema: Mapping[str, Any] | None, field: str = "") -> Any:
    """Merge an applied configuration into the live object (simplifications: see the module docstring)."""
    schema = schema or {}
    if isinstance(applied, dict) and isinstance(live, dict):
        result = copy.deepcopy(live)
        properties = schema.get("properties") or {}
        extra = (
            schema.get("additionalProperties")
            if isinstance(schema.get("additionalProperties"), dict)
            else None
        )
        for key, value in applied.items():
            result[key] = apply_patch(live.get(key), value, properties.get(key, extra), key)
        return result
    if isinstance(applied, list) and isinstance(live, list):
        list_type = schema.get("x-kubernetes-list-type")
        item_schema = schema.get("items")
        if list_type == "set":
            return copy.deepcopy(live) + [copy.deepcopy(item) for item in applied if item not in live]
        keys: Sequence[str] | None = schema.get("x-kubernetes-list-map-keys") if list_type == "map" else None
        if keys is None and not schema:
            strategic_key = _strategic_key(field, applied)
            keys = (strategic_key,) if strategic_key else None
        if not keys:
            return copy.deepcopy(applied)
        merged = copy.deepcopy(live)
        for item in applied:
            position = next(
                (
                    i
                    for i, old in enumerate(merged)
                    if isinstance(old, dict)
                    and isinstance(item, dict)
                    and all(old.get(key) == item.get(key) for key in keys)
                ),
                None,
            )
            if position is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[position] = apply_patch(merged[position], item, item_schema)
        return merged
    return copy.deepcopy(applied)
