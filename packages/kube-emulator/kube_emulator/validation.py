"""
Admission of custom resources against their CRD's ``openAPIV3Schema``, in the
order the real API server does it: defaults first, then pruning of unknown
fields (or, with ``?fieldValidation=Strict``, rejecting them), then structural
validation and ``x-kubernetes-validations`` CEL rules.

Every violation is collected (not only the first) and worded like
kube-apiserver's, because that message is how users meet our validation.

Simplified: ``allOf``/``anyOf``/``oneOf``/``not`` are not evaluated;
``format`` is checked for ``date-time`` only; CEL cost limits are not
enforced, rules are not type-checked when the CRD is created (a rule that
does not compile is reported when it is evaluated), and CEL runs on a node
only when that node passed the structural checks. A rule that fails to
evaluate is a 422 naming the rule, never a 500.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import celpy
import celpy.adapter
import celpy.celtypes

from kube_emulator import errors

Schema = Mapping[str, Any]
ROOT_META_FIELDS = ("apiVersion", "kind", "metadata")  # never pruned or schema-checked at the root

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@dataclasses.dataclass
class Outcome:
    causes: list[errors.Cause]
    unknown_fields: list[str]  # pruned field paths (rejected under fieldValidation=Strict)


def admit(obj: dict[str, Any], schema: Schema, *, old: Mapping[str, Any] | None) -> Outcome:
    """Default and prune ``obj`` in place, then validate it (and transition rules against ``old``)."""
    apply_defaults(obj, schema, root=True)
    unknown: list[str] = []
    _prune(obj, schema, "", unknown, root=True)
    causes: list[errors.Cause] = []
    _validate(obj, schema, "", causes, old, old is not None, root=True)
    return Outcome(causes=causes, unknown_fields=unknown)


# --- defaulting and pruning ---------------------------------------------------------------------------------


def apply_defaults(value: Any, schema: Schema, *, root: bool = False) -> None:
    if isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties") or {}
        for key, subschema in properties.items():
            if root and key in ROOT_META_FIELDS:
                continue
            if key not in value and "default" in subschema:
                value[key] = copy.deepcopy(subschema["default"])
            if key in value:
                apply_defaults(value[key], subschema)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, item in value.items():
                if key not in properties:
                    apply_defaults(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            apply_defaults(item, schema["items"])


def _prune(value: Any, schema: Schema, path: str, unknown: list[str], *, root: bool = False) -> None:
    if isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
        for key in list(value):
            if root and key in ROOT_META_FIELDS:
                continue
            if key in properties:
                _prune(value[key], properties[key], _join(path, key), unknown)
            elif isinstance(extra, Mapping):
                _prune(value[key], extra, _join(path, key), unknown)
            elif not preserve:
                unknown.append(_join(path, key))
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            _prune(item, schema["items"], f"{path}[{index}]", unknown)


# --- structural validation --------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """A value as kube-apiserver prints it in "Invalid value: ..." messages."""
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(value)


def _type_name(value: Any) -> str:
    for name, types in _TYPES.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name in ("integer", "number")):
            return name
    return "null" if value is None else type(value).__name__


def _type_ok(value: Any, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    expected = schema.get("type")
    if expected is None:
        return True
    if isinstance(value, bool) and expected in ("integer", "number"):
        return False
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(expected, (object,)))


def _invalid(path: str, value: Any, detail: str) -> errors.Cause:
    return errors.Cause("FieldValueInvalid", path, f"Invalid value: {_show(value)}: {detail}")


def _validate(
    value: Any,
    schema: Schema,
    path: str,
    causes: list[errors.Cause],
    old: Any,
    has_old: bool,
    *,
    root: bool = False,
) -> None:
    start = len(causes)
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            detail = f'{path} in body must be of type {schema["type"]}: "null"'
            causes.append(errors.Cause("FieldValueInvalid", path, f'Invalid value: "null": {detail}'))
        return
    if not _type_ok(value, schema):
        expected = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        actual = _type_name(value)
        detail = f'{path} in body must be of type {expected}: "{actual}"'
        causes.append(errors.Cause("FieldValueInvalid", path, f'Invalid value: "{actual}": {detail}'))
        return

    _check_scalar(value, schema, path, causes)
    if isinstance(value, dict):
        _check_object(value, schema, path, causes, old if isinstance(old, dict) else None, root=root)
    elif isinstance(value, list):
        _check_array(value, schema, path, causes, old if isinstance(old, list) else None)

    if len(causes) == start:  # CEL rules see only structurally valid values
        for rule in schema.get("x-kubernetes-validations") or ():
            cause = _check_rule(rule, value, old, has_old, path)
            if cause is not None:
                causes.append(cause)


def _check_scalar(value: Any, schema: Schema, path: str, causes: list[errors.Cause]) -> None:
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(item) for item in schema["enum"])
        message = f"Unsupported value: {_show(value)}: supported values: {supported}"
        causes.append(errors.Cause("FieldValueNotSupported", path, message))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                _invalid(path, value, f"{path} in body should be at least {schema['minLength']} chars long")
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            message = f"Too long: may not be more than {schema['maxLength']} bytes"
            causes.append(errors.Cause("FieldValueTooLong", path, message))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(_invalid(path, value, f"{path} in body should match '{schema['pattern']}'"))
        if schema.get("format") == "date-time" and not _RFC3339.match(value):
            causes.append(_invalid(path, value, f'{path} in body must be of type date-time: "{value}"'))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            low, exclusive = schema["minimum"], schema.get("exclusiveMinimum", False)
            if value < low or (exclusive and value == low):
                word = "greater than" if exclusive else "greater than or equal to"
                causes.append(_invalid(path, value, f"{path} in body should be {word} {low}"))
        if "maximum" in schema:
            high, exclusive = schema["maximum"], schema.get("exclusiveMaximum", False)
            if value > high or (exclusive and value == high):
                word = "less than" if exclusive else "less than or equal to"
                causes.append(_invalid(path, value, f"{path} in body should be {word} {high}"))
        if schema.get("multipleOf") and value % schema["multipleOf"]:
            causes.append(
                _invalid(path, value, f"{path} in body should be a multiple of {schema['multipleOf']}")
            )


def _check_object(
    value: dict[str, Any],
    schema: Schema,
    path: str,
    causes: list[errors.Cause],
    old: dict[str, Any] | None,
    *,
    root: bool,
) -> None:
    for name in schema.get("required") or ():
        if name not in value:
            causes.append(errors.Cause("FieldValueRequired", _join(path, name), "Required value"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        message = f"Too many: {len(value)}: must have at most {schema['maxProperties']} items"
        causes.append(errors.Cause("FieldValueTooMany", path, message))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        causes.append(
            _invalid(path, value, f"{path} in body should have at least {schema['minProperties']} properties")
        )
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if root and key in ROOT_META_FIELDS:
            continue
        subschema = properties.get(key, extra if isinstance(extra, Mapping) else None)
        if subschema is not None:
            has_old = old is not None and key in old
            _validate(item, subschema, _join(path, key), causes, old.get(key) if old else None, has_old)


def _check_array(
    value: list[Any], schema: Schema, path: str, causes: list[errors.Cause], old: list[Any] | None
) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(
            _invalid(path, len(value), f"{path} in body should have at least {schema['minItems']} items")
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        message = f"Too many: {len(value)}: must have at most {schema['maxItems']} items"
        causes.append(errors.Cause("FieldValueTooMany", path, message))

    list_type = schema.get("x-kubernetes-list-type")
    keys: list[str] = schema.get("x-kubernetes-list-map-keys") or []
    seen: list[Any] = []
    for index, item in enumerate(value):
        identity = (
            tuple(item.get(key) for key in keys) if list_type == "map" and isinstance(item, dict) else item
        )
        if list_type in ("set", "map") and identity in seen:
            shown = (
                _show(item)
                if list_type == "set"
                else "{" + ", ".join(f"{key}: {json.dumps(item.get(key))}" for key in keys) + "}"
            )
            causes.append(
                errors.Cause("FieldValueDuplicate", f"{path}[{index}]", f"Duplicate value: {shown}")
            )
        seen.append(identity)

    item_schema = schema.get("items")
    if not isinstance(item_schema, Mapping):
        return
    for index, item in enumerate(value):
        # Transition rules correlate list items only by their map keys (as the real server does).
        old_item, has_old = None, False
        if old is not None and list_type == "map" and isinstance(item, dict):
            for candidate in old:
                if isinstance(candidate, dict) and all(candidate.get(k) == item.get(k) for k in keys):
                    old_item, has_old = candidate, True
                    break
        _validate(item, item_schema, f"{path}[{index}]", causes, old_item, has_old)


# --- CEL rules ------------------------------------------------------------------------------------------


_environment = celpy.Environment()
_programs: dict[str, Any] = {}
_OLD_SELF = re.compile(r"\boldSelf\b")
_REASON_PREFIXES = {
    "FieldValueInvalid": None,
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}


class RuleError(Exception):
    """A CEL rule failed to compile or to evaluate."""


def evaluate_cel(rule: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate a CEL expression over JSON values: a plain Python value, or :class:`RuleError`.

    Memoized: cel-python walks the parse tree on every call, and a rule such as our
    time-zone check (``self in [ ...600 zones... ]``) takes ~11 ms that way, which made
    creating objects the emulator's bottleneck (35/s). A rule over the same values
    always gives the same answer (CEL is pure), and the same zones recur.
    """
    ok, value = _evaluate_memoized(rule, json.dumps(variables, sort_keys=True, separators=(",", ":")))
    if not ok:
        raise RuleError(value)
    return value


@functools.lru_cache(maxsize=16_384)
def _evaluate_memoized(rule: str, variables: str) -> tuple[bool, Any]:
    try:
        return True, _evaluate(rule, json.loads(variables))
    except RuleError as error:
        return False, str(error)


def _evaluate(rule: str, variables: Mapping[str, Any]) -> Any:
    try:
        program = _programs.get(rule)
        if program is None:
            program = _programs[rule] = _environment.program(_environment.compile(rule))
        activation = {name: celpy.adapter.json_to_cel(value) for name, value in variables.items()}
        result = program.evaluate(activation)
    except Exception as exc:  # celpy raises parse errors, CELEvalError, and plain Python errors alike
        raise RuleError(_describe(exc)) from None
    if isinstance(result, Exception):  # celpy may return an error value instead of raising it
        raise RuleError(_describe(result))
    if isinstance(result, celpy.celtypes.BoolType):
        return bool(result)
    if isinstance(result, str):
        return str(result)
    return result


def _describe(exc: BaseException) -> str:
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0].splitlines()[0]
    return type(exc).__name__


def _check_rule(
    rule: Mapping[str, Any], value: Any, old: Any, has_old: bool, path: str
) -> errors.Cause | None:
    text = rule.get("rule", "")
    is_transition = bool(_OLD_SELF.search(text))
    if is_transition and not has_old:
        return None  # transition rules only run on updates where the old value exists
    variables = {"self": value, "oldSelf": old} if is_transition else {"self": value}
    field = path
    if rule.get("fieldPath"):
        field = path + (
            rule["fieldPath"] if rule["fieldPath"].startswith(("[", ".")) else "." + rule["fieldPath"]
        )
        field = field.lstrip(".")
    try:
        if evaluate_cel(text, variables) is True:
            return None
    except RuleError as exc:
        return _invalid(field, value, f"{exc} evaluating rule: {text}")
    message = rule.get("message") or f"failed rule: {text}"
    if rule.get("messageExpression"):
        try:
            custom = evaluate_cel(rule["messageExpression"], variables)
            if isinstance(custom, str) and custom.strip():
                message = custom
        except RuleError:
            pass  # the real server falls back to `message` when messageExpression fails
    reason = rule.get("reason") or "FieldValueInvalid"
    prefix = _REASON_PREFIXES.get(reason)
    if prefix is None:
        return _invalid(field, value, message)
    return errors.Cause(reason, field, f"{prefix}: {message}")
