"""
Discovery and OpenAPI documents, built from the served resource types.

Stock kmock guesses discovery from the declared reactions and omits the
``<plural>/status`` subresources. kubectl also sends an Accept header asking
for aggregated discovery (``apidiscovery.k8s.io/v2``) with plain JSON as the
last choice; we answer the plain legacy documents (``APIGroupList``…) with
``Content-Type: application/json``, which kubectl accepts and falls back on.

The OpenAPI v3 documents are minimal: for each group/version, the PATCH
operation of every resource with its ``x-kubernetes-group-version-kind`` and
the ``fieldValidation`` parameter, which is what kubectl checks before it
relies on server-side field validation (so a plain ``kubectl apply`` works
without ``--validate=false``); schemas are those of the CRDs.
"""

from __future__ import annotations

from typing import Any

from kube_emulator import resources

Json = dict[str, Any]
SERVER_VERSION: Json = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-devstack",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions() -> Json:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


def _group(name: str, versions: list[str]) -> Json:
    return {
        "name": name,
        "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]},
    }


def api_group_list(registry: resources.Registry) -> Json:
    groups = [_group(name, versions) for name, versions in registry.groups().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: resources.Registry, group: str) -> Json | None:
    versions = registry.groups().get(group)
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)} if group and versions else None


def api_resource_list(registry: resources.Registry, group: str, version: str) -> Json | None:
    entries: list[Json] = []
    for rt in registry:
        if rt.group != group or rt.version != version:
            continue
        entries.append(
            {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
                "shortNames": list(rt.short_names),
                "categories": list(rt.categories),
            }
        )
        if rt.has_status:
            entries.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    if not entries:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": resources.ResourceType(
            group=group, version=version, plural="", singular="", kind=""
        ).api_version,
        "resources": entries,
    }


def root_paths(registry: resources.Registry) -> Json:
    paths = {"/api", "/api/v1", "/apis", "/version", "/openapi/v3"}
    for group, versions in registry.groups().items():
        if group:
            paths.add(f"/apis/{group}")
            paths.update(f"/apis/{group}/{v}" for v in versions)
    return {"paths": sorted(paths)}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root(registry: resources.Registry) -> Json:
    paths = {}
    for group, versions in registry.groups().items():
        for version in versions:
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}"}
    return {"paths": paths}


def openapi_v3_group_version(registry: resources.Registry, group: str, version: str) -> Json | None:
    paths: Json = {}
    schemas: Json = {}
    for rt in registry:
        if rt.group != group or rt.version != version:
            continue
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        schema_name = f"{rt.group or 'core'}.{rt.version}.{rt.kind}"
        schemas[schema_name] = {
            **(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
            "x-kubernetes-group-version-kind": [gvk],
        }
        parameters = [
            {"name": name, "in": "query", "schema": {"type": "string"}}
            for name in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        operation = {
            "parameters": parameters,
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "responses": {
                "200": {
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
                    }
                }
            },
        }
        prefix = f"/{_gv_path(group, version)}/" + ("namespaces/{namespace}/" if rt.namespaced else "")
        paths[prefix + rt.plural + "/{name}"] = {
            "patch": operation,
            "put": {**operation, "x-kubernetes-action": "put"},
            "get": {**operation, "x-kubernetes-action": "get"},
        }
        paths[prefix + rt.plural] = {"post": {**operation, "x-kubernetes-action": "post"}}
    if not paths:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
