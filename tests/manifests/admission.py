"""
A ValidatingAdmissionPolicy and its binding, evaluated offline with cel-python, so
that the chart's policy can be tried on admission requests without an API server.

The steps are kube-apiserver's (Kubernetes docs, "Validating Admission Policy"):

1. the policy's ``matchConstraints`` and the binding's ``matchResources`` select the
   request (operation, group, version, resource and subresource, namespace labels);
2. its ``matchConditions`` must all be true, else the policy does not apply;
3. its ``variables`` are evaluated in order, each seeing the earlier ones as
   ``variables.<name>``;
4. each validation must be true; the first that is not refuses the request with its
   ``messageExpression`` (when that gives a non-empty one-line string), else its
   ``message``, else "failed expression: ...".

An expression that fails to evaluate refuses the request (``failurePolicy: Fail``), as
does a non-boolean result. A ``messageExpression`` that fails or gives no usable string
falls back to ``message`` as on a real server, and is recorded in ``errors`` so that
tests can insist on it working.

Simplified: no ``params``, ``authorizer`` or ``namespaceObject``; variables are
evaluated before the validations rather than on first use (so one that fails refuses
even if no validation uses it); nothing is type-checked against the CRD schemas.
Policy features the chart does not use (params, object selectors, exclusions) raise
:class:`PolicyError` rather than being ignored.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import celpy
import celpy.adapter
import celpy.celtypes

Json = dict[str, Any]

_environment = celpy.Environment()


class PolicyError(Exception):
    """The policy uses something this evaluator does not model."""


class ExpressionError(Exception):
    """A CEL expression failed to compile or to evaluate."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Attempt:
    """An admission request: who does what to which object, in which namespace."""

    operation: str  # CREATE, UPDATE, DELETE
    object: Json | None
    user: str
    groups: tuple[str, ...] = ()
    old_object: Json | None = None
    namespace: str = "team-a"
    namespace_labels: Mapping[str, str] | None = None  # default: kubernetes.io/metadata.name
    subresource: str = ""
    group: str = "todo.dev"
    version: str = "v1alpha1"
    resource: str = ""  # default: the plural of the object's kind

    def request(self) -> Json:
        """The ``request`` variable: the AdmissionRequest without its objects (variables of their own)."""
        body = self.object or self.old_object or {}
        kind = {"group": self.group, "version": self.version, "kind": body.get("kind", "")}
        resource = {"group": self.group, "version": self.version, "resource": self.plural()}
        user: Json = {"username": self.user, "uid": f"uid-of-{self.user}"}
        if self.groups:  # omitted when empty, as in the AdmissionRequest's JSON
            user["groups"] = list(self.groups)
        request: Json = {
            "uid": "00000000-0000-0000-0000-000000000000",
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": body.get("metadata", {}).get("name", ""),
            "namespace": self.namespace,
            "operation": self.operation,
            "userInfo": user,
            "dryRun": False,
        }
        if self.subresource:
            request["subResource"] = request["requestSubResource"] = self.subresource
        return request

    def plural(self) -> str:
        if self.resource:
            return self.resource
        body = self.object or self.old_object or {}
        return f"{body.get('kind', '').lower()}s"

    def labels_of_namespace(self) -> Mapping[str, str]:
        if self.namespace_labels is not None:
            return self.namespace_labels
        return {"kubernetes.io/metadata.name": self.namespace}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Decision:
    allowed: bool
    applies: (
        bool  # False: the binding or the policy did not select the request, or a matchCondition let it go
    )
    message: str = ""  # why it was refused
    variables: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    errors: tuple[str, ...] = ()  # expressions that failed (each refuses) and unusable messageExpressions


def decide(policy: Json, binding: Json, attempt: Attempt) -> Decision:
    """What the API server would answer to ``attempt`` with this policy bound by ``binding``."""
    spec, binding_spec = policy["spec"], binding["spec"]
    if binding_spec.get("policyName") != policy["metadata"]["name"]:
        return Decision(allowed=True, applies=False)
    if "Deny" not in binding_spec.get("validationActions", []):
        raise PolicyError("only validationActions with Deny are modelled")
    if spec.get("failurePolicy", "Fail") != "Fail":
        raise PolicyError("only failurePolicy: Fail is modelled")
    if spec.get("paramKind") or binding_spec.get("paramRef"):
        raise PolicyError("params are not modelled")
    if not _selects(spec.get("matchConstraints") or {}, attempt, required=True):
        return Decision(allowed=True, applies=False)
    if not _selects(binding_spec.get("matchResources") or {}, attempt, required=False):
        return Decision(allowed=True, applies=False)

    activation: dict[str, Any] = {
        "object": attempt.object,
        "oldObject": attempt.old_object,
        "request": attempt.request(),
    }
    errors: list[str] = []
    for condition in spec.get("matchConditions") or ():
        try:
            kept = _evaluate(condition["expression"], activation)
        except ExpressionError as error:
            errors.append(f"matchCondition {condition['name']}: {error}")
            continue
        if kept is False:
            return Decision(allowed=True, applies=False)
        if kept is not True:
            errors.append(f"matchCondition {condition['name']} gave {kept!r}, not a boolean")
    if errors:  # none was false, one failed: failurePolicy Fail refuses
        return Decision(allowed=False, applies=True, message="; ".join(errors), errors=tuple(errors))

    variables: dict[str, Any] = {}
    for variable in spec.get("variables") or ():
        try:
            variables[variable["name"]] = _evaluate(
                variable["expression"], {**activation, "variables": variables}
            )
        except ExpressionError as error:
            errors.append(f"variable {variable['name']}: {error}")
            return Decision(
                allowed=False, applies=True, message=errors[-1], variables=variables, errors=tuple(errors)
            )
    activation["variables"] = variables

    for validation in spec.get("validations") or ():
        expression = validation["expression"]
        try:
            passed = _evaluate(expression, activation)
        except ExpressionError as error:
            errors.append(f"validation {expression!r}: {error}")
            return Decision(
                allowed=False, applies=True, message=errors[-1], variables=variables, errors=tuple(errors)
            )
        if passed is True:
            continue
        if passed is not False:
            errors.append(f"validation {expression!r} gave {passed!r}, not a boolean")
            return Decision(
                allowed=False, applies=True, message=errors[-1], variables=variables, errors=tuple(errors)
            )
        message = validation.get("message") or f"failed expression: {expression}"
        if validation.get("messageExpression"):
            try:
                custom = _evaluate(validation["messageExpression"], activation)
            except ExpressionError as error:
                errors.append(f"messageExpression: {error}")
            else:
                if isinstance(custom, str) and custom.strip() and "\n" not in custom:
                    message = custom
                else:
                    errors.append(f"messageExpression gave {custom!r}, not a one-line string")
        return Decision(
            allowed=False, applies=True, message=message, variables=variables, errors=tuple(errors)
        )
    return Decision(allowed=True, applies=True, variables=variables, errors=tuple(errors))


# --- selecting the request --------------------------------------------------------------------------------


def _selects(match: Json, attempt: Attempt, *, required: bool) -> bool:
    """matchConstraints (``required``: a policy must name its resources) or a binding's matchResources."""
    for unsupported in ("excludeResourceRules", "objectSelector"):
        if match.get(unsupported):
            raise PolicyError(f"{unsupported} is not modelled")
    if match.get("matchPolicy", "Equivalent") != "Equivalent":
        raise PolicyError("only matchPolicy: Equivalent is modelled")
    rules = match.get("resourceRules") or []
    if required and not rules:
        raise PolicyError("a policy's matchConstraints must have resourceRules")
    if rules and not any(_rule_matches(rule, attempt) for rule in rules):
        return False
    return _selector_matches(match.get("namespaceSelector") or {}, attempt.labels_of_namespace())


def _rule_matches(rule: Json, attempt: Attempt) -> bool:
    def listed(values: Sequence[str], value: str) -> bool:
        return "*" in values or value in values

    if rule.get("resourceNames"):
        raise PolicyError("resourceNames are not modelled")
    wanted = f"{attempt.plural()}/{attempt.subresource}" if attempt.subresource else attempt.plural()
    resources = rule.get("resources") or []
    resource_listed = (
        wanted in resources
        or "*/*" in resources
        or ("*" in resources and not attempt.subresource)
        or (bool(attempt.subresource) and f"{attempt.plural()}/*" in resources)
    )
    return (
        listed(rule.get("operations") or [], attempt.operation)
        and listed(rule.get("apiGroups") or [], attempt.group)
        and listed(rule.get("apiVersions") or [], attempt.version)
        and resource_listed
    )


def _selector_matches(selector: Json, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; the empty selector matches everything."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for requirement in selector.get("matchExpressions") or ():
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values") or []
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise PolicyError(f"selector operator {operator} is not a LabelSelector operator")
        if not ok:
            return False
    return True


# --- CEL -------------------------------------------------------------------------------------------------


@functools.cache
def _program(expression: str) -> Any:
    try:
        return _environment.program(_environment.compile(expression))
    except Exception as error:  # celpy's parse errors have no common base class
        raise ExpressionError(f"does not compile: {_describe(error)}") from None


def _evaluate(expression: str, activation: Mapping[str, Any]) -> Any:
    """``expression`` over JSON values (and already evaluated variables): a plain Python value."""
    program = _program(expression)
    cel: dict[str, Any] = {}
    for name, value in activation.items():
        if name == "variables":
            cel[name] = celpy.celtypes.MapType(
                {celpy.celtypes.StringType(key): _to_cel(item) for key, item in value.items()}
            )
        else:
            cel[name] = celpy.adapter.json_to_cel(value)
    try:
        result = program.evaluate(cel)
    except Exception as error:  # celpy raises CELEvalError and plain Python errors alike
        raise ExpressionError(_describe(error)) from None
    if isinstance(result, Exception):  # celpy may return an error value instead of raising it
        raise ExpressionError(_describe(result))
    return _from_cel(result)


def _to_cel(value: Any) -> Any:
    return celpy.adapter.json_to_cel(value)


def _from_cel(value: Any) -> Any:
    if isinstance(value, celpy.celtypes.BoolType):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, celpy.celtypes.IntType):
        return int(value)
    return value


def _describe(error: BaseException) -> str:
    if error.args and isinstance(error.args[0], str):
        return error.args[0].splitlines()[0]
    return type(error).__name__
