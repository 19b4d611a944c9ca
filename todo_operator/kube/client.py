"""Our custom resources and the few built-in kinds we write, as plain dicts, over lightkube.

The one Kubernetes adapter: the operator writes occurrences, status, Events,
Reminders and CronJobs through it; the REST API writes specs through it (never
PostgreSQL, which only the operator writes), so the API server's validation and
optimistic concurrency apply to REST users exactly as to kubectl users. Every
call answers in :mod:`todo_operator.kube.errors`' types.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import lightkube
from lightkube import codecs, generic_resource
from lightkube.config.models import Cluster, User
from lightkube.core.resource import NamespacedResourceG
from lightkube.resources import batch_v1, core_v1
from lightkube.types import CascadeType, PatchType

from todo_operator.domain import crds, resources
from todo_operator.kube.errors import NotFound, translated
from todo_operator.telemetry import tracing

Body = dict[str, Any]


def _resource_class(kind: crds.Kind) -> type[NamespacedResourceG]:
    cls: type[NamespacedResourceG] = generic_resource.create_namespaced_resource(
        resources.GROUP, resources.VERSION, kind.kind, kind.plural
    )
    return cls


class Kube:
    """Typed, minimal access to our three custom resources and the built-in kinds we write."""

    def __init__(self, client: lightkube.AsyncClient) -> None:
        self._client = client
        self._classes = {kind.kind: _resource_class(kind) for kind in crds.KINDS}

    def _cls(self, kind: crds.Kind) -> type[NamespacedResourceG]:
        return self._classes[kind.kind]

    async def get(self, kind: crds.Kind, *, namespace: str, name: str) -> Body | None:
        try:
            with translated():
                return _as_dict(await self._client.get(self._cls(kind), name, namespace=namespace))
        except NotFound:
            return None

    async def create(self, kind: crds.Kind, manifest: Mapping[str, Any]) -> Body:
        # What is created (occurrences, reminders, a REST user's object) continues the trace that made it.
        resource = self._cls(kind).from_dict(tracing.annotate(manifest))  # type: ignore[attr-defined]  # generic resources build from dicts
        with translated():
            return _as_dict(await self._client.create(resource))

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
        status_class = self._cls(kind).Status  # type: ignore[attr-defined]  # the status subresource class
        return await self._merge_patch(
            status_class, namespace, name, {"status": dict(status)}, resource_version
        )

    async def patch_spec(
        self,
        kind: crds.Kind,
        *,
        namespace: str,
        name: str,
        spec: Mapping[str, Any],
        resource_version: str | None,
    ) -> Body:
        """JSON-merge-patch ``spec`` (``None`` removes a field); with a resourceVersion, only if current."""
        patch = tracing.annotate({"spec": dict(spec)})
        return await self._merge_patch(self._cls(kind), namespace, name, patch, resource_version)

    async def _merge_patch(
        self, cls: Any, namespace: str, name: str, patch: Mapping[str, Any], resource_version: str | None
    ) -> Body:
        body: dict[str, Any] = dict(patch)
        if resource_version is not None:  # the API server answers 409 if the object moved on
            body["metadata"] = {**body.get("metadata", {}), "resourceVersion": resource_version}
        with translated():
            return _as_dict(
                await self._client.patch(cls, name, body, namespace=namespace, patch_type=PatchType.MERGE)
            )

    async def list(self, kind: crds.Kind, *, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        selector: dict[str, Any] = dict(labels)
        with translated():
            return [
                _as_dict(item)
                async for item in self._client.list(self._cls(kind), namespace=namespace, labels=selector)
            ]

    async def delete(self, kind: crds.Kind, *, namespace: str, name: str) -> None:
        """Delete; an object already gone is no error."""
        try:
            with translated():
                await self._client.delete(self._cls(kind), name, namespace=namespace)
        except NotFound:
            return

    # ------------------------------------------------------------ built-in kinds (batch/v1 CronJob, Job)

    @staticmethod
    def _builtin(api_version: str, kind: str) -> Any:
        return _BUILTINS[(api_version, kind)]

    async def get_builtin(self, api_version: str, kind: str, *, namespace: str, name: str) -> Body | None:
        try:
            with translated():
                found = await self._client.get(self._builtin(api_version, kind), name, namespace=namespace)
        except NotFound:
            return None
        return _as_dict(found)

    async def create_builtin(self, manifest: Mapping[str, Any]) -> Body:
        with translated():
            return _as_dict(await self._client.create(codecs.from_dict(dict(manifest))))

    async def patch_builtin(
        self, api_version: str, kind: str, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Body:
        return await self._merge_patch(self._builtin(api_version, kind), namespace, name, patch, None)

    async def delete_builtin(self, api_version: str, kind: str, *, namespace: str, name: str) -> None:
        """Delete, leaving the object's Jobs and Pods to finish (a running notify pod must not be killed)."""
        try:
            with translated():
                await self._client.delete(
                    self._builtin(api_version, kind), name, namespace=namespace, cascade=CascadeType.ORPHAN
                )
        except NotFound:
            return


_BUILTINS: dict[tuple[str, str], Any] = {
    ("batch/v1", "CronJob"): batch_v1.CronJob,
    ("batch/v1", "Job"): batch_v1.Job,
    ("v1", "Event"): core_v1.Event,
}


def event_manifest(
    *,
    involved: Body,
    type_: str,
    reason: str,
    message: str,
    component: str,
    at: datetime,
    instance: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (what ``kubectl describe`` lists); ``instance``: which
    operator shard posted it."""
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
        **({"reportingInstance": instance} if instance else {}),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def _as_dict(resource: Any) -> Body:
    body: Body = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
    return body


def client_for(*, api_url: str | None) -> lightkube.AsyncClient:
    """A client for the API server at ``api_url``, or from kubeconfig / in-cluster config."""
    if api_url:
        # KubeConfig.from_server() leaves the user out, which lightkube 1.0.1's own
        # client then refuses ("Missing user"): give it an anonymous one.
        config = lightkube.KubeConfig.from_one(cluster=Cluster(server=api_url), user=User())
        return lightkube.AsyncClient(config=config, field_manager="todo-operator")
    return lightkube.AsyncClient(field_manager="todo-operator")
