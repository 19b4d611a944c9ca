"""The shim's Kubernetes access: the operator's adapter plus what a REST API needs on top.

Writes go to the API server — never to PostgreSQL, which only the operator
writes — so the API server's validation (the CRD schema and its CEL rules)
and its optimistic concurrency apply to REST users exactly as to kubectl
users. Two additions over :class:`todo_operator.operator.kube.Kube`: a spec
merge patch that carries ``metadata.resourceVersion`` (a stale one is the
API server's 409, which the routes answer as 412), and 422 answers kept with
their ``causes`` so each field's message reaches the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightkube
from lightkube.types import PatchType

from todo_operator.domain import crds
from todo_operator.operator import kube
from todo_operator.telemetry import tracing

Body = kube.Body
KubeError = kube.KubeError
NotFound = kube.NotFound
AlreadyExists = kube.AlreadyExists
Conflict = kube.Conflict
TransientKubeError = kube.TransientKubeError


class Invalid(kube.KubeError):
    """The API server refused the object (422); ``causes`` are ``(field, message)`` pairs."""

    def __init__(self, message: str, *, causes: list[tuple[str, str]]) -> None:
        super().__init__(message, code=422, reason="Invalid")
        self.causes = causes


def _translate(error: Exception) -> kube.KubeError:
    if isinstance(error, lightkube.ApiError) and error.status.code == 422:
        details = error.status.details
        causes = [
            (cause.field or "", cause.message or "invalid")
            for cause in ((details.causes or []) if details is not None else [])
        ]
        return Invalid(error.status.message or "invalid object", causes=causes)
    return kube._translate(error)  # the operator adapter's translation, shared on purpose


class ApiKube(kube.Kube):
    async def create_object(self, kind: crds.Kind, manifest: Mapping[str, Any]) -> Body:
        cls = self._cls(kind)
        try:
            # The operator's reconcile of this object continues the request's trace.
            created = await self._client.create(cls.from_dict(tracing.annotate(manifest)))  # type: ignore[attr-defined]  # generic resources build from dicts
        except kube._TRANSLATED as error:
            raise _translate(error) from error
        return kube._as_dict(created)

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
        body: dict[str, Any] = tracing.annotate({"spec": dict(spec), "metadata": {}})
        if resource_version is not None:
            body["metadata"]["resourceVersion"] = resource_version
        try:
            patched = await self._client.patch(
                self._cls(kind), name, body, namespace=namespace, patch_type=PatchType.MERGE
            )
        except kube._TRANSLATED as error:
            raise _translate(error) from error
        return kube._as_dict(patched)


def client_for(*, api_url: str | None) -> lightkube.AsyncClient:
    client: lightkube.AsyncClient = kube.client_for(api_url=api_url)
    return client
