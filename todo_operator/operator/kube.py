"""The operator's Kubernetes API adapter: our custom resources as plain dicts.

Kopf watches and delivers objects; everything the operator *writes* (Task
occurrences, status, deletions of pruned history) goes through this module,
over lightkube's async client. Errors come out as this project's own
exception types, so services never catch a library's exceptions: a
:class:`TransientKubeError` is worth retrying, anything else is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import lightkube
from lightkube import codecs, generic_resource
from lightkube.config.models import Cluster, User
from lightkube.core.resource import NamespacedResourceG
from lightkube.resources import batch_v1, core_v1
from lightkube.types import CascadeType, PatchType

from todo_operator.domain import crds, resources
from todo_operator.telemetry import tracing

Body = dict[str, Any]


class KubeError(Exception):
    """An answer from the API server that retrying will not change."""

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class NotFound(KubeError):
    pass


class AlreadyExists(KubeError):
    pass


class Conflict(KubeError):
    """A stale resourceVersion: re-read, recompute, retry."""


class TransientKubeError(KubeError):
    """The API server is unreachable, overloaded or failing (5xx, 429): retry with backoff."""


def _resource_class(kind: crds.Kind) -> type[NamespacedResourceG]:
    cls: type[NamespacedResourceG] = generic_resource.create_namespaced_resource(
        resources.GROUP, resources.VERSION, kind.kind, kind.plural
    )
    return cls


def _translate(error: Exception) -> KubeError:
    if isinstance(error, lightkube.ApiError):
        code = error.status.code
        reason = error.status.reason
        message = error.status.message or str(error)
        if code == 404:
            return NotFound(message, code=code, reason=reason)
        if code == 409 and reason == "AlreadyExists":
            return AlreadyExists(message, code=code, reason=reason)
        if code == 409:
            return Conflict(message, code=code, reason=reason)
        if code is not None and (code >= 500 or code == 429):
            return TransientKubeError(message, code=code, reason=reason)
        return KubeError(message, code=code, reason=reason)
    return TransientKubeError(f"Kubernetes API unreachable: {error}")


_TRANSLATED = (lightkube.ApiError, httpx.HTTPError, OSError)


class Kube:
    """Typed, minimal access to our three custom resources."""

    def __init__(self, client: lightkube.AsyncClient) -> None:
        self._client = client
        self._classes = {kind.kind: _resource_class(kind) for kind in crds.KINDS}

    def _cls(self, kind: crds.Kind) -> type[NamespacedResourceG]:
        return self._classes[kind.kind]

    async def get(self, kind: crds.Kind, *, namespace: str, name: str) -> Body | None:
        try:
            found = await self._client.get(self._cls(kind), name, namespace=namespace)
        except _TRANSLATED as error:
            translated = _translate(error)
            if isinstance(translated, NotFound):
                return None
            raise translated from error
        return _as_dict(found)

    async def create(self, kind: crds.Kind, manifest: Mapping[str, Any]) -> Body:
        cls = self._cls(kind)
        try:
            # What the operator creates (occurrences, reminders) continues the trace that made it.
            created = await self._client.create(cls.from_dict(tracing.annotate(manifest)))  # type: ignore[attr-defined]  # generic resources build from dicts
        except _TRANSLATED as error:
            raise _translate(error) from error
        return _as_dict(created)

    async def patch_status(
        self,
        kind: crds.Kind,
        *,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> Body:
        """JSON-merge-patch the status subresource (``null`` values remove fields).

        With ``resource_version``, only if the object is still that version (else :class:`Conflict`).
        """
        patch: dict[str, Any] = {"status": dict(status)}
        if resource_version is not None:
            patch["metadata"] = {"resourceVersion": resource_version}
        try:
            patched = await self._client.patch(
                self._cls(kind).Status,  # type: ignore[attr-defined]  # the status subresource class
                name,
                patch,
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
        except _TRANSLATED as error:
            raise _translate(error) from error
        return _as_dict(patched)

    async def list(self, kind: crds.Kind, *, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        selector: dict[str, Any] = dict(labels)
        try:
            return [
                _as_dict(item)
                async for item in self._client.list(self._cls(kind), namespace=namespace, labels=selector)
            ]
        except _TRANSLATED as error:
            raise _translate(error) from error

    async def delete(self, kind: crds.Kind, *, namespace: str, name: str) -> None:
        try:
            await self._client.delete(self._cls(kind), name, namespace=namespace)
        except _TRANSLATED as error:
            translated = _translate(error)
            if not isinstance(translated, NotFound):
                raise translated from error

    # ------------------------------------------------------------ built-in kinds (batch/v1 CronJob, Job)

    @staticmethod
    def _builtin(api_version: str, kind: str) -> Any:
        return _BUILTINS[(api_version, kind)]

    async def get_builtin(self, api_version: str, kind: str, *, namespace: str, name: str) -> Body | None:
        try:
            found = await self._client.get(self._builtin(api_version, kind), name, namespace=namespace)
        except _TRANSLATED as error:
            translated = _translate(error)
            if isinstance(translated, NotFound):
                return None
            raise translated from error
        return _as_dict(found)

    async def create_builtin(self, manifest: Mapping[str, Any]) -> Body:
        try:
            created = await self._client.create(codecs.from_dict(dict(manifest)))
        except _TRANSLATED as error:
            raise _translate(error) from error
        return _as_dict(created)

    async def patch_builtin(
        self, api_version: str, kind: str, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Body:
        try:
            patched = await self._client.patch(
                self._builtin(api_version, kind),
                name,
                dict(patch),
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
        except _TRANSLATED as error:
            raise _translate(error) from error
        return _as_dict(patched)

    async def delete_builtin(self, api_version: str, kind: str, *, namespace: str, name: str) -> None:
        """Delete, leaving the object's Jobs and Pods to finish (a running notify pod must not be killed)."""
        try:
            await self._client.delete(
                self._builtin(api_version, kind), name, namespace=namespace, cascade=CascadeType.ORPHAN
            )
        except _TRANSLATED as error:
            translated = _translate(error)
            if not isinstance(translated, NotFound):
                raise translated from error


_BUILTINS: dict[tuple[str, str], Any] = {
    ("batch/v1", "CronJob"): batch_v1.CronJob,
    ("batch/v1", "Job"): batch_v1.Job,
    ("v1", "Event"): core_v1.Event,
}


def event_manifest(
    *, involved: Body, type_: str, reason: str, message: str, component: str, at: datetime
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (what ``kubectl describe`` lists)."""
    meta = involved["metadata"]
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", resources.API_VERSION),
            "kind": involved.get("kind", ""),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def _as_dict(resource: Any) -> Body:
    body: Body = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
    return body


def client_for(*, api_url: str | None) -> lightkube.AsyncClient:
    """A client for ``api_url`` (the devstack emulator), or from kubeconfig / in-cluster config."""
    if api_url:
        # KubeConfig.from_server() leaves the user out, which lightkube 1.0.1's own
        # client then refuses ("Missing user"): give it an anonymous one.
        config = lightkube.KubeConfig.from_one(cluster=Cluster(server=api_url), user=User())
        return lightkube.AsyncClient(config=config, field_manager="todo-operator")
    return lightkube.AsyncClient(field_manager="todo-operator")
