"""The cluster as ``kubectl todo`` sees it: the user's kubeconfig and the official Kubernetes client.

Every read and write goes through the API server with the user's own
credentials, as kubectl's do, so RBAC and admission (the CRDs' schemas and
CEL rules) apply to the plugin as to kubectl. The plugin talks to nothing
else: not the REST API, not PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from todo_operator.domain import crds, resources

Body = dict[str, Any]


class PluginError(Exception):
    """What the plugin says, on one line, when it cannot do what was asked (exit code 1)."""


class NotFound(PluginError):
    """The API server has no such object."""


class Cluster:
    """One kubeconfig context: its API server, its credentials and its namespace."""

    def __init__(self, *, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        # The client's kubeconfig loader is untyped; this class is where its answers get types.
        try:
            self._client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, persist_config=False
            )
            contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=kubeconfig
            )
        except (ConfigException, FileNotFoundError) as error:
            raise PluginError(f"no usable kubeconfig: {error}") from None
        if context is not None:
            active = next((found for found in contexts if found["name"] == context), active)
        self.namespace = namespace or (active.get("context") or {}).get("namespace") or "default"
        self._objects = client.CustomObjectsApi(self._client)
        self._server = self._client.configuration.host

    def list(self, kind: crds.Kind, *, all_namespaces: bool = False) -> list[Body]:
        if all_namespaces:
            found = self._call(
                self._objects.list_cluster_custom_object, resources.GROUP, _VERSION, kind.plural
            )
        else:
            found = self._call(
                self._objects.list_namespaced_custom_object,
                resources.GROUP,
                _VERSION,
                self.namespace,
                kind.plural,
            )
        items: list[Body] = found["items"]
        return items

    def get(self, kind: crds.Kind, name: str) -> Body | None:
        try:
            found: Body = self._call(
                self._objects.get_namespaced_custom_object,
                resources.GROUP,
                _VERSION,
                self.namespace,
                kind.plural,
                name,
            )
        except NotFound:
            return None
        return found

    def create(self, kind: crds.Kind, manifest: Body) -> Body:
        made: Body = self._call(
            self._objects.create_namespaced_custom_object,
            resources.GROUP,
            _VERSION,
            self.namespace,
            kind.plural,
            manifest,
        )
        return made

    def patch_spec(self, kind: crds.Kind, name: str, spec: Body) -> Body:
        """A JSON merge patch of ``spec`` (RFC 7386: ``None`` removes a field)."""
        patched: Body = self._call(
            self._objects.patch_namespaced_custom_object,
            resources.GROUP,
            _VERSION,
            self.namespace,
            kind.plural,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",
        )
        return patched

    def delete(self, kind: crds.Kind, name: str) -> None:
        self._call(
            self._objects.delete_namespaced_custom_object,
            resources.GROUP,
            _VERSION,
            self.namespace,
            kind.plural,
            name,
        )

    def whoami(self) -> str | None:
        """The user name the API server knows these credentials by (``kubectl auth whoami``);
        None where it does not say (SelfSubjectReview not served, or not allowed)."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            answer = self._call(client.AuthenticationV1Api(self._client).create_self_subject_review, review)
        except PluginError:
            return None
        user = answer.status.user_info if answer.status is not None else None
        return user.username if user is not None else None

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """The client's call, its failures said in one line (the API server's own message)."""
        try:
            return method(*args, **kwargs)
        except client.ApiException as error:
            message = _status_message(error)
            raise (NotFound if error.status == 404 else PluginError)(message) from None
        except urllib3.exceptions.HTTPError as error:
            raise PluginError(f"cannot reach the API server at {self._server}: {error}") from None


_VERSION = resources.API_VERSION.split("/", 1)[1]


def _status_message(error: Any) -> str:
    """The ``message`` of the API server's Status (what kubectl prints), else the HTTP reason."""
    try:
        status = json.loads(error.body or "")
    except ValueError:
        status = None
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return str(status["message"])
    return f"the API server answered {error.status} {error.reason}"
