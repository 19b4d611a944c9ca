"""
API errors rendered as ``kind: Status`` the way the real API server words them.

Clients branch on ``code`` and ``reason`` (Kopf retries on 409, gives up on
422; kubectl prints ``message``), and people read ``message``, so both are
formatted like kube-apiserver's (``k8s.io/apimachinery/pkg/api/errors``).
Stock kmock puts a Python traceback into ``details``; we never do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kube_emulator import resources


@dataclasses.dataclass(frozen=True)
class Cause:
    """One field error (``field.Error`` in apimachinery): a reason, a field path, a message body."""

    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
    field: str  # e.g. "spec.priority"
    message: str  # e.g. 'Unsupported value: "huge": supported values: "low", "high"'

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


class ApiError(Exception):
    """An error answered to the client as a ``Status`` with the given HTTP code."""

    def __init__(
        self, code: int, reason: str, message: str, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(rt: resources.ResourceType, name: str, *, kind: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind or rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def not_found(rt: resources.ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified_plural} "{name}" not found', details=_details(rt, name))


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'namespaces "{namespace}" not found',
        details={"name": namespace, "kind": "namespaces"},
    )


def already_exists(rt: resources.ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{rt.qualified_plural} "{name}" already exists', details=_details(rt, name)
    )


def conflict(rt: resources.ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified_plural} "{name}": {why}',
        details=_details(rt, name),
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(rt: resources.ResourceType, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid listing every violation, worded as ``NewInvalid`` does."""
    summary = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(str(cause) for cause in causes) + "]"
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [cause.to_dict() for cause in causes]
    return ApiError(422, "Invalid", f'{rt.kind}.{rt.group} "{name}" is invalid: {summary}', details=details)


def forbidden(rt: resources.ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        403, "Forbidden", f'{rt.qualified_plural} "{name}" is forbidden: {why}', details=_details(rt, name)
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType", f'the body of the request was in an unknown format - "{content_type}"'
    )


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
