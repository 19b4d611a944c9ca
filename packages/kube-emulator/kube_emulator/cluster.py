"""
The API semantics, independent of HTTP: what create, update, patch and delete
do to stored objects.

This is where the emulator departs most from stock kmock, which stores request
bodies as given. Reproduced from the real API server:

* metadata: ``uid``, ``creationTimestamp``, ``resourceVersion`` from one
  global counter, ``generation`` (1 at create, bumped when anything outside
  metadata — and outside status for kinds with a status subresource —
  changes), ``generateName``; a no-op update writes nothing and keeps the
  resourceVersion;
* optimistic concurrency: a stale ``metadata.resourceVersion`` is a 409;
* the status subresource: the main resource ignores ``status``, ``/status``
  changes nothing but ``status``; custom resources lose ``status`` at create;
* finalizers: deleting an object with finalizers only sets
  ``deletionTimestamp``; it goes when the last finalizer is removed; no new
  finalizers once deletion started;
* garbage collection by ``ownerReferences`` with Background, Foreground and
  Orphan propagation, done synchronously right after the owner goes (the
  real collector is asynchronous, so clients must not rely on either order);
* namespaces: creating in a missing namespace is a 404, in a terminating one
  a 403; deleting a namespace deletes its content first;
* CRDs: creating one serves its resource; deleting one drops its objects
  (without waiting for their finalizers — simplified);
* custom resources are defaulted, pruned and validated against the CRD.

Simplified: no ``managedFields``; PUT without ``metadata.resourceVersion`` is
an unconditional update for every kind (the real server requires it for
custom resources); names are checked as RFC 1123 subdomains for every kind.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kube_emulator import builtin, errors, patching, resources, store, validation

Json = dict[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # as k8s.io/apiserver's names generator
_IMMUTABLE_METADATA = (
    "uid",
    "creationTimestamp",
    "name",
    "namespace",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
)
FOREGROUND = "foregroundDeletion"


@dataclasses.dataclass
class Restored:
    count: int = 0  # objects put back that a new cluster does not make itself (as its namespaces)
    left_out: dict[store.StorageKey, int] = dataclasses.field(default_factory=dict)  # kinds not served


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Cluster:
    """All the state of the emulated API server: the served resource types and the objects."""

    def __init__(self, *, crds: Iterable[Mapping[str, Any]] = (), log_size: int = 10_000) -> None:
        self.registry = resources.Registry(builtin.BUILTIN_TYPES)
        self.store = store.Store(log_size=log_size)
        for name in builtin.INITIAL_NAMESPACES:
            self.create(builtin.NAMESPACES, None, {"metadata": {"name": name}})
        for crd in crds:
            self.create(builtin.CRDS, None, copy.deepcopy(dict(crd)))

    # --- reading ----------------------------------------------------------------------------------

    def get(self, rt: resources.ResourceType, namespace: str | None, name: str) -> Json:
        obj = self.store.get(rt.storage_key, namespace or "", name)
        if obj is None:
            raise errors.not_found(rt, name)
        return self.view(rt, obj)

    def list_objects(
        self, rt: resources.ResourceType, namespace: str | None, predicate: Predicate
    ) -> list[Json]:
        found = [
            self.view(rt, obj) for obj in self.store.list_objects(rt.storage_key, namespace) if predicate(obj)
        ]
        return sorted(found, key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    @staticmethod
    def view(rt: resources.ResourceType, obj: Json) -> Json:
        """The object as seen through one version of its resource (all versions share the storage)."""
        return obj if obj.get("apiVersion") == rt.api_version else {**obj, "apiVersion": rt.api_version}

    # --- create -----------------------------------------------------------------------------------

    def create(
        self,
        rt: resources.ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        strict: bool = False,
    ) -> Json:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(_GENERATE_NAME_ALPHABET) for _ in range(5)
            )
        name = meta.get("name") or ""
        if not name:
            cause = errors.Cause(
                "FieldValueRequired", "metadata.name", "Required value: name or generateName is required"
            )
            raise errors.invalid(rt, name, [cause])
        self._check_name(rt, name)

        if rt.namespaced:
            if namespace and meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or meta.get("namespace") or "default"
            self._check_namespace_open(rt, namespace, name)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""

        if self.store.get(rt.storage_key, namespace, name) is not None:
            raise errors.already_exists(rt, name)

        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if rt.custom and rt.has_status:
            obj.pop("status", None)
        self._initialise_builtin(rt, obj)
        self._admit(rt, obj, old=None, strict=strict)
        if dry_run:
            return obj
        self.store.put(rt.storage_key, obj, "ADDED")
        if rt.storage_key == builtin.CRDS.storage_key:
            for custom in resources.from_crd(obj):
                self.registry.add(custom)
        return obj

    def _check_name(self, rt: resources.ResourceType, name: str) -> None:
        if len(name) > 253 or not _NAME.match(name):
            message = (
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            )
            raise errors.invalid(rt, name, [errors.Cause("FieldValueInvalid", "metadata.name", message)])

    def _check_namespace_open(self, rt: resources.ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get(builtin.NAMESPACES.storage_key, "", namespace)
        if ns is None:
            raise errors.namespace_not_found(namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _initialise_builtin(self, rt: resources.ResourceType, obj: Json) -> None:
        if rt is builtin.NAMESPACES:
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        elif rt.storage_key == builtin.CRDS.storage_key:
            names = obj.get("spec", {}).get("names", {})
            obj["status"] = {
                "acceptedNames": names,
                "storedVersions": [
                    v["name"] for v in obj.get("spec", {}).get("versions", []) if v.get("storage")
                ],
                "conditions": [
                    {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": _now()}
                    for t, r, m in [
                        ("NamesAccepted", "NoConflicts", "no conflicts found"),
                        ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                    ]
                ],
            }

    def _admit(self, rt: resources.ResourceType, obj: Json, *, old: Json | None, strict: bool) -> None:
        if rt.schema is None:
            return
        outcome = validation.admit(obj, rt.schema, old=old)
        if strict and outcome.unknown_fields:
            unknown = ", ".join(f'unknown field "{path}"' for path in outcome.unknown_fields)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {unknown}"
            )
        if outcome.causes:
            raise errors.invalid(rt, obj["metadata"]["name"], outcome.causes)

    # --- update: PUT and PATCH share one path ----------------------------------------------------------

    def replace(
        self,
        rt: resources.ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
    ) -> Json:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        old = self._stored(rt, namespace, name)
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        self._check_precondition(rt, old, body)
        return self._update(
            rt, old, copy.deepcopy(body), subresource=subresource, dry_run=dry_run, strict=strict
        )

    def patch(
        self,
        rt: resources.ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
        field_manager: str | None = None,
    ) -> Json:
        if patch_type == patching.APPLY_PATCH:
            return self._apply(
                rt,
                namespace,
                name,
                body,
                subresource=subresource,
                dry_run=dry_run,
                strict=strict,
                field_manager=field_manager,
            )
        old = self._stored(rt, namespace, name)
        try:
            if patch_type == patching.JSON_PATCH:
                new = patching.json_patch(old, body)
            elif patch_type == patching.MERGE_PATCH:
                self._check_precondition(rt, old, body)
                new = patching.merge_patch(old, body)
            elif patch_type == patching.STRATEGIC_MERGE_PATCH and not rt.custom:
                self._check_precondition(rt, old, body)
                new = patching.strategic_merge_patch(old, body)
            else:
                accepted = [
                    t for t in patching.PATCH_TYPES if not (rt.custom and t == patching.STRATEGIC_MERGE_PATCH)
                ]
                raise errors.ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(accepted)}",
                )
        except patching.PatchError as exc:
            raise errors.ApiError(422, "Invalid", str(exc)) from None
        if not isinstance(new, dict):
            raise errors.ApiError(422, "Invalid", "the patch turned the object into a non-object")
        return self._update(rt, old, new, subresource=subresource, dry_run=dry_run, strict=strict)

    def _apply(
        self,
        rt: resources.ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None,
        dry_run: bool,
        strict: bool,
        field_manager: str | None,
    ) -> Json:
        if not field_manager:
            cause = errors.Cause(
                "FieldValueRequired", "fieldManager", "Required value: is required for apply patch"
            )
            raise errors.invalid(rt, name, [cause])
        if not isinstance(body, dict) or not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("an applied configuration must have apiVersion and kind")
        old = self.store.get(rt.storage_key, namespace or "", name)
        if old is None:
            if subresource:
                raise errors.not_found(rt, name)
            body = copy.deepcopy(body)
            body.setdefault("metadata", {})["name"] = name
            return self.create(rt, namespace, body, dry_run=dry_run, strict=strict)
        self._check_precondition(rt, old, body)
        new = patching.apply_patch(old, body, rt.schema if rt.custom else None)
        return self._update(rt, old, new, subresource=subresource, dry_run=dry_run, strict=strict)

    def _stored(self, rt: resources.ResourceType, namespace: str | None, name: str) -> Json:
        obj = self.store.get(rt.storage_key, namespace or "", name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    @staticmethod
    def _check_precondition(rt: resources.ResourceType, old: Json, body: Any) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, old["metadata"]["name"], errors.STALE)

    def _update(
        self,
        rt: resources.ResourceType,
        old: Json,
        new: Json,
        *,
        subresource: str | None,
        dry_run: bool,
        strict: bool,
    ) -> Json:
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            new.pop("status", None)
            if status is not None:
                new["status"] = status
        elif subresource:
            raise errors.ApiError(
                404, "NotFound", f"the server could not find the requested resource ({subresource})"
            )
        else:
            new_meta: Json = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
            new["metadata"] = {
                k: v for k, v in new_meta.items() if k not in _IMMUTABLE_METADATA and k != "managedFields"
            }
            new["metadata"].update(
                {k: old["metadata"][k] for k in _IMMUTABLE_METADATA if k in old["metadata"]}
            )
            if rt.has_status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]

        meta = new["metadata"]
        if old["metadata"].get("deletionTimestamp"):
            added = [
                f for f in meta.get("finalizers") or () if f not in (old["metadata"].get("finalizers") or ())
            ]
            if added:
                message = (
                    "Forbidden: no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {added!r}"
                )
                raise errors.invalid(
                    rt, meta["name"], [errors.Cause("FieldValueForbidden", "metadata.finalizers", message)]
                )
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)

        self._admit(rt, new, old=old, strict=strict)
        ignored = ("metadata", "status") if rt.has_status else ("metadata",)
        if any(new.get(key) != old.get(key) for key in set(new) | set(old) if key not in ignored):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        if new == old or dry_run:
            return new
        self.store.put(rt.storage_key, new, "MODIFIED")
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(rt.storage_key, new)
        return new

    # --- delete and garbage collection -------------------------------------------------------------

    def delete(
        self,
        rt: resources.ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Json:
        obj = self._stored(rt, namespace, name)
        for field in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(field)
            if wanted and wanted != obj["metadata"].get(field):
                actual = obj["metadata"].get(field)
                why = (
                    "Precondition failed: "
                    + f"{field} in precondition: {wanted}, {field} in object meta: {actual}"
                )
                raise errors.conflict(rt, name, why)
        if propagation not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"unsupported propagationPolicy: {propagation!r}")
        if dry_run:
            return self.view(rt, obj)
        return self.view(rt, self._delete(rt.storage_key, obj, propagation or "Background"))

    def _delete(self, storage_key: store.StorageKey, obj: Json, propagation: str) -> Json:
        meta = obj["metadata"]
        if storage_key == builtin.NAMESPACES.storage_key:
            return self._delete_namespace(obj)
        if propagation == "Orphan":
            for dep_key, dependent in self.store.dependents(meta["uid"]):
                self._drop_owner(dep_key, dependent, meta["uid"])
        foreground = propagation == "Foreground" and bool(self.store.dependents(meta["uid"]))
        finalizers = list(meta.get("finalizers") or ())
        if foreground and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if not finalizers:
            return self._remove(storage_key, obj)
        if not meta.get("deletionTimestamp"):
            obj = copy.deepcopy(obj)
            obj["metadata"].update(
                deletionTimestamp=_now(), deletionGracePeriodSeconds=0, finalizers=finalizers
            )
            self.store.put(storage_key, obj, "MODIFIED")
        if foreground:
            for dep_key, dependent in self._live(self.store.dependents(meta["uid"])):
                self._delete(dep_key, dependent, "Foreground")
        return obj

    def _live(
        self, found: Iterable[tuple[store.StorageKey, Json]]
    ) -> Iterable[tuple[store.StorageKey, Json]]:
        """Re-read each object just before use: collecting one object may already have collected the next."""
        for _, obj in found:
            current = self.store.by_uid(obj["metadata"]["uid"])
            if current is not None:
                yield current

    def _delete_namespace(self, ns: Json) -> Json:
        if not ns["metadata"].get("deletionTimestamp"):
            ns = copy.deepcopy(ns)
            ns["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
            ns["status"] = {"phase": "Terminating"}
            self.store.put(builtin.NAMESPACES.storage_key, ns, "MODIFIED")
        name = ns["metadata"]["name"]
        for storage_key, obj in self._live(list(self.store.in_namespace(name))):
            self._delete(storage_key, obj, "Background")
        return self._finish_namespace(name) or ns

    def _finish_namespace(self, name: str) -> Json | None:
        ns = self.store.get(builtin.NAMESPACES.storage_key, "", name)
        if (
            ns
            and ns["metadata"].get("deletionTimestamp")
            and not any(True for _ in self.store.in_namespace(name))
        ):
            return self.store.remove(builtin.NAMESPACES.storage_key, ns)
        return None

    def _remove(self, storage_key: store.StorageKey, obj: Json) -> Json:
        """Remove an object for good, then collect what depended on it."""
        last = self.store.remove(storage_key, obj)
        meta = obj["metadata"]
        if storage_key == builtin.CRDS.storage_key:
            self._drop_crd(obj)
        for dep_key, dependent in self._live(self.store.dependents(meta["uid"])):
            alive = [
                ref
                for ref in dependent["metadata"].get("ownerReferences") or ()
                if ref.get("uid") != meta["uid"] and self.store.by_uid(ref.get("uid", "")) is not None
            ]
            if alive:
                self._drop_owner(dep_key, dependent, meta["uid"])
            else:
                self._delete(dep_key, dependent, "Background")
        for ref in meta.get("ownerReferences") or ():
            self._release_foreground_owner(ref.get("uid", ""))
        if meta.get("namespace"):
            self._finish_namespace(meta["namespace"])
        return last

    def _release_foreground_owner(self, owner_uid: str) -> None:
        found = self.store.by_uid(owner_uid)
        if found is None or self.store.dependents(owner_uid):
            return
        storage_key, owner = found
        if FOREGROUND in (owner["metadata"].get("finalizers") or ()):
            owner = copy.deepcopy(owner)
            remaining = [f for f in owner["metadata"].pop("finalizers") if f != FOREGROUND]
            if remaining:
                owner["metadata"]["finalizers"] = remaining
            self.store.put(storage_key, owner, "MODIFIED")
            if not remaining:
                self._remove(storage_key, owner)

    def _drop_owner(self, storage_key: store.StorageKey, dependent: Json, owner_uid: str) -> None:
        dependent = copy.deepcopy(dependent)
        refs = [
            ref for ref in dependent["metadata"].get("ownerReferences") or () if ref.get("uid") != owner_uid
        ]
        if refs:
            dependent["metadata"]["ownerReferences"] = refs
        else:
            dependent["metadata"].pop("ownerReferences", None)
        self.store.put(storage_key, dependent, "MODIFIED")

    def _drop_crd(self, crd: Json) -> None:
        spec = crd.get("spec", {})
        group, plural = spec.get("group", ""), spec.get("names", {}).get("plural", "")
        self.registry.remove_group_plural(group, plural)
        for obj in self.store.list_objects((group, plural)):
            self.store.remove((group, plural), obj)

    # --- restoring an earlier emulator's objects (the demo's --keep) ------------------------------------

    def restore(self, saved: Mapping[store.StorageKey, Sequence[Json]], *, revision: int) -> Restored:
        """
        Put back what an earlier emulator stored, verbatim (uids, resourceVersions, status, finalizers),
        and count on from its ``revision``.

        The CRDs this cluster was made with stay: each run serves the current ones. CRDs the earlier
        one had besides come back, served again. Every other kind is replaced by what was saved, the
        namespaces included (theirs, not the ones this cluster just made). Objects of a kind no longer
        served are left out, and counted. The event log starts empty at the saved revision, so a watch
        resuming from before the restart gets "410 Gone" and relists, as after etcd compaction.
        """
        made_here = {
            (key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            for key, obj in self.store.everything()
        }
        restored = Restored()
        crd_key = builtin.CRDS.storage_key
        served_crds = {crd["metadata"]["name"] for crd in self.store.list_objects(crd_key)}
        extra_crds = [crd for crd in saved.get(crd_key, ()) if crd["metadata"]["name"] not in served_crds]
        self.store.restore(crd_key, [*self.store.list_objects(crd_key), *extra_crds])
        for crd in extra_crds:
            for custom in resources.from_crd(crd):
                self.registry.add(custom)
        served = {rt.storage_key for rt in self.registry}
        for storage_key, objects in saved.items():
            if storage_key == crd_key:
                continue
            if storage_key not in served:
                restored.left_out[storage_key] = len(objects)
                continue
            self.store.restore(storage_key, objects)
        for storage_key, obj in self.store.everything():
            if (storage_key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) not in made_here:
                restored.count += 1
        self.store.continue_from(revision)
        return restored

    # --- snapshots for tests ------------------------------------------------------------------------

    def find_type(self, resource: str) -> resources.ResourceType:
        """A type from "group/version/plural" ("v1/plural" for the core group)."""
        *group_version, plural = resource.split("/")
        group, version = group_version if len(group_version) == 2 else ["", *group_version]
        rt = self.registry.find(group, version, plural)
        if rt is None:
            raise LookupError(f"resource {resource!r} is not served")
        return rt

    def snapshot(self, resource: str, namespace: str | None = None) -> Sequence[Json]:
        rt = self.find_type(resource)
        return copy.deepcopy(self.list_objects(rt, namespace, lambda obj: True))
