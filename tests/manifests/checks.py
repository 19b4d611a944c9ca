"""
Checks on rendered Kubernetes objects. Each returns the problems it finds (an empty
list means the objects pass), so that a test can feed it a bad object and see it
flagged: every check here has a negative control in test_checks_catch_faults.py.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import pathlib
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import celpy
import celpy.adapter
import celpy.celtypes
import jsonschema
import kubernetes_validate
import yaml

from tests import ROOT

Json = dict[str, Any]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_SKIPS = pathlib.Path(__file__).with_name("checkov-skips.yaml")
# CRDs of the custom kinds the chart creates that are validated too (KEDA's); README.md there.
CRD_SCHEMAS = pathlib.Path(__file__).with_name("schemas")
NOTIFY_TEMPLATE_KEY = "notify-job-template.yaml"


def name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


def notify_job(obj: Mapping[str, Any]) -> Json | None:
    """The reminder Job the operator would create from the chart's template ConfigMap."""
    if obj.get("kind") != "ConfigMap" or NOTIFY_TEMPLATE_KEY not in obj.get("data", {}):
        return None
    template = yaml.safe_load(obj["data"][NOTIFY_TEMPLATE_KEY])
    for container in template["spec"]["template"]["spec"]["containers"]:
        container.setdefault("image", "ghcr.io/todo-dev/todo-operator:0.1.0")
        container.setdefault("args", ["notify", "--reminder", "default/example"])
    metadata = {
        **template.get("metadata", {}),
        "name": "reminder-example",
        "namespace": obj["metadata"].get("namespace", "default"),
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template["spec"]}


def with_notify_jobs(objects: Iterable[Json]) -> list[Json]:
    """The objects plus, for the notify template, the Job it makes (validated like any Job)."""
    result = []
    for obj in objects:
        result.append(obj)
        job = notify_job(obj)
        if job is not None:
            result.append(job)
    return result


def pod_templates(objects: Iterable[Json]) -> Iterator[tuple[str, Json, Json]]:
    """(object name, pod labels, pod spec) of every workload."""
    for obj in objects:
        kind = obj.get("kind")
        if kind == "Pod":
            yield name_of(obj), obj["metadata"].get("labels", {}), obj["spec"]
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = obj["spec"]["template"]
            yield name_of(obj), template.get("metadata", {}).get("labels", {}), template["spec"]
        elif kind == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
            yield name_of(obj), template.get("metadata", {}).get("labels", {}), template["spec"]


def wildcard_rbac(objects: Iterable[Json]) -> list[str]:
    problems = []
    for obj in objects:
        if obj.get("kind") not in ("Role", "ClusterRole"):
            continue
        for rule in obj.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if any("*" in item for item in rule.get(field) or []):
                    problems.append(f"{name_of(obj)}: wildcard in {field}: {rule}")
            if set(rule.get("verbs") or []) & {"escalate", "bind", "impersonate"}:
                problems.append(f"{name_of(obj)}: privilege-escalating verb: {rule}")
    return problems


def insecure_containers(objects: Iterable[Json]) -> list[str]:
    problems = []
    for name, _, spec in pod_templates(objects):
        pod_context = spec.get("securityContext", {})
        if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{name}: shares a host namespace")
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            context = {**pod_context, **container.get("securityContext", {})}
            where = f"{name} container {container['name']}"
            if context.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if context.get("runAsUser", 1) == 0:
                problems.append(f"{where}: runs as user 0")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root file system is writable")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped (drop: [ALL])")
            if context.get("capabilities", {}).get("add"):
                problems.append(f"{where}: adds capabilities")
            if not container.get("resources", {}).get("limits") or not container["resources"].get("requests"):
                problems.append(f"{where}: no resource requests and limits")
    return problems


def missing_probes(objects: Iterable[Json]) -> list[str]:
    """Long-running workloads (Deployments) need liveness and readiness probes on an HTTP path."""
    problems = []
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if not http or not http.get("path"):
                    problems.append(f"{name_of(obj)} container {container['name']}: no HTTP {probe}")
                    continue
                port = http.get("port")
                ports = {p.get("name") for p in container.get("ports", [])} | {
                    p.get("containerPort") for p in container.get("ports", [])
                }
                if port not in ports:
                    problems.append(
                        f"{name_of(obj)} container {container['name']}: {probe} port {port} unknown"
                    )
    return problems


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in wanted.items()):
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
            raise ValueError(f"{operator} is not a LabelSelector operator")
        if not ok:
            return False
    return True


def unselective_network_policies(objects: Sequence[Json]) -> list[str]:
    """Every NetworkPolicy selects at least one of the workloads' pods (else it protects nothing)."""
    pods = [labels for _, labels, _ in pod_templates(with_notify_jobs(objects))]
    problems = []
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy":
            continue
        selector = obj["spec"].get("podSelector", {})
        if not any(selects(selector, labels) for labels in pods):
            problems.append(f"{name_of(obj)}: its podSelector {selector} selects none of the chart's pods")
    return problems


def unprotected_pods(objects: Sequence[Json]) -> list[str]:
    """Every pod is selected by some NetworkPolicy that has Ingress and Egress rules (default deny)."""
    policies = [obj for obj in objects if obj.get("kind") == "NetworkPolicy"]
    problems = []
    for name, labels, _ in pod_templates(with_notify_jobs(objects)):
        covering = [p for p in policies if selects(p["spec"].get("podSelector", {}), labels)]
        types = {t for p in covering for t in p["spec"].get("policyTypes", [])}
        if not {"Ingress", "Egress"} <= types:
            problems.append(f"{name}: not covered by a NetworkPolicy for both Ingress and Egress")
    return problems


def crd_differences(objects: Iterable[Json], crds_dir: pathlib.Path) -> list[str]:
    """The chart's CRDs equal the generated ones in crds/ (ignoring the keep annotation the chart adds)."""
    expected = {}
    for path in sorted(crds_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        expected[crd["metadata"]["name"]] = crd
    rendered = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition":
            crd = json.loads(json.dumps(obj))
            annotations = crd["metadata"].get("annotations", {})
            annotations.pop("helm.sh/resource-policy", None)
            if not annotations:
                crd["metadata"].pop("annotations", None)
            rendered[crd["metadata"]["name"]] = crd
    problems = [f"missing from the chart: {name}" for name in expected.keys() - rendered.keys()]
    problems += [f"not in crds/: {name}" for name in rendered.keys() - expected.keys()]
    problems += [
        f"{name} differs from crds/"
        for name in expected.keys() & rendered.keys()
        if expected[name] != rendered[name]
    ]
    return problems


def schema_errors(objects: Iterable[Json], kubernetes_version: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) from kubernetes-validate's strict schemas, and for the custom kinds
    of CRD_SCHEMAS from their CRDs (custom_resource_errors); other custom kinds only warn."""
    errors, warnings = [], []
    for obj in objects:
        crd_schema = custom_resource_schemas().get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if crd_schema is not None:
            problems = _object_meta_errors(obj, kubernetes_version) + custom_resource_errors(obj, crd_schema)
            errors += [f"{name_of(obj)}: {problem}" for problem in problems]
            continue
        try:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            warnings.append(f"{name_of(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(part) for part in error.path)
            errors.append(f"{name_of(obj)} ({kubernetes_version}): {path}: {error.message}")
    return errors, warnings


@functools.cache
def custom_resource_schemas() -> dict[tuple[str, str], Json]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the CRDs in CRD_SCHEMAS."""
    schemas = {}
    for path in sorted(CRD_SCHEMAS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                api_version = f"{spec['group']}/{version['name']}"
                schemas[api_version, spec["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def _refusing_unknown_fields(schema: Json) -> Json:
    """The schema with unknown fields refused wherever it lists the known ones. The API server
    prunes unknown fields of a custom resource silently (a misspelt field is lost, not reported);
    `kubectl apply`'s strict field validation refuses them, and so does this check."""
    strict = dict(schema)
    if "properties" in strict:
        strict["properties"] = {
            key: _refusing_unknown_fields(value) for key, value in schema["properties"].items()
        }
        if not strict.get("x-kubernetes-preserve-unknown-fields"):
            strict.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties"):
        if isinstance(strict.get(key), dict):
            strict[key] = _refusing_unknown_fields(strict[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in strict:
            strict[key] = [_refusing_unknown_fields(item) for item in strict[key]]
    return strict


_cel = celpy.Environment()


@functools.cache
def _cel_program(rule: str) -> Any:
    return _cel.program(_cel.compile(rule))


def _rule_errors(schema: Json, value: Any, path: str) -> list[str]:
    """The CRD's x-kubernetes-validations (CEL, ``self`` the value they sit on) that ``value`` breaks.
    A rule that does not evaluate to true refuses, as on the API server (celpy may return its
    evaluation error instead of raising it)."""
    problems = []
    for validation in schema.get("x-kubernetes-validations", []):
        result = _cel_program(validation["rule"]).evaluate({"self": celpy.adapter.json_to_cel(value)})
        if not isinstance(result, celpy.celtypes.BoolType) or not result:
            problems.append(f"{path or '/'}: {validation.get('message') or validation['rule']}")
    if isinstance(value, dict):
        for key, item in value.items():
            extra = schema.get("additionalProperties")
            sub = schema.get("properties", {}).get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                problems += _rule_errors(sub, item, f"{path}/{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += _rule_errors(schema["items"], item, f"{path}/{index}")
    return problems


def _object_meta_errors(obj: Json, kubernetes_version: str) -> list[str]:
    """A custom resource's metadata is an ObjectMeta like any object's (its CRD only says
    ``type: object``): checked here as a ConfigMap's."""
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
    try:
        kubernetes_validate.validate(carrier, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(str(part) for part in error.path)}: {error.message}"]
    return []


def custom_resource_errors(obj: Json, crd_schema: Json) -> list[str]:
    """What the API server (with strict field validation) would refuse in a custom resource:
    its CRD's schema with unknown fields refused, then (on an object that passes it, as the API
    server does) the CRD's CEL rules. No defaults are applied first, so a rule about a field
    left to its default is not checked."""
    validator = jsonschema.Draft4Validator(_refusing_unknown_fields(crd_schema))
    problems = [
        f"{'/'.join(str(part) for part in error.absolute_path) or '/'}: {error.message}"
        for error in sorted(
            validator.iter_errors(obj), key=lambda error: [str(p) for p in error.absolute_path]
        )
    ]
    return problems or _rule_errors(crd_schema, obj, "")


def long_names(objects: Iterable[Json]) -> list[str]:
    problems = []
    for obj in objects:
        meta = obj.get("metadata", {})
        if len(meta.get("name", "")) > 63 and obj.get("kind") != "CustomResourceDefinition":
            problems.append(f"{name_of(obj)}: name longer than 63 characters")
        for key, value in (meta.get("labels") or {}).items():
            if len(str(value)) > 63:
                problems.append(f"{name_of(obj)}: label {key} longer than 63 characters")
    return problems


# --- checkov ------------------------------------------------------------------------------------------


def run_checkov(paths: Sequence[pathlib.Path], *, frameworks: Sequence[str]) -> list[Json]:
    """Failed checks of one checkov run over several files (one run: checkov starts slowly)."""
    arguments = [str(CHECKOV), "--framework", *frameworks, "--output", "json", "--quiet", "--skip-download"]
    for path in paths:
        arguments += ["--file", str(path)]
    completed = subprocess.run(arguments, capture_output=True, text=True, check=False, timeout=300)
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed: {completed.stderr[-2000:]}")
    reports = json.loads(completed.stdout or "[]")
    if isinstance(reports, dict):
        reports = [reports]
    failed: list[Json] = []
    for report in reports:
        if isinstance(report, dict) and "results" in report:
            for check in report["results"].get("failed_checks", []):
                failed.append({**check, "check_type": report.get("check_type", "")})
    return failed


def load_checkov_skips() -> list[Json]:
    skips: list[Json] = yaml.safe_load(CHECKOV_SKIPS.read_text())["skips"]
    return skips


def unskipped(failed: Iterable[Json], skips: Sequence[Json]) -> list[str]:
    """Failed checks no skip entry (check id + resource glob, each with a reason) accounts for."""
    problems = []
    for check in failed:
        resource = check.get("resource", "")
        if not any(
            skip["check"] == check["check_id"] and fnmatch.fnmatch(resource, skip.get("resource", "*"))
            for skip in skips
        ):
            problems.append(
                f"{check['check_id']} {check.get('check_name', '')}: {resource} ({check.get('file_path')})"
            )
    return problems
