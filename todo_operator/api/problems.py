"""RFC 9457 problem documents: every error this API answers has the same shape.

Clients get ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail``, ``instance`` and, for bad input, ``errors`` — one
``{field, message}`` per problem — so a form can put each message beside
its field. Services raise :mod:`todo_operator.api.errors` (and the
Kubernetes adapter its own), which :mod:`todo_operator.api.app` translates;
only the edge (routes, auth, limits) raises :class:`Problem` itself. Nothing
builds responses by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from todo_operator.api import errors as refusals

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://todo.dev/problems/"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDocument(BaseModel):
    """The body of every error answer (RFC 9457)."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str = ""
    instance: str = Field(default="", description="the request path")
    errors: list[FieldError] = Field(default_factory=list)


class Problem(Exception):
    """An error answer; raise it anywhere below a route."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _default_kind(status)
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def document(self, *, instance: str) -> ProblemDocument:
        return ProblemDocument(
            type=TYPE_BASE + self.kind,
            title=_TITLES.get(self.status, "Error"),
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        )


def _default_kind(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "-")


def from_validation_errors(errors: Sequence[Mapping[str, Any]], *, prefix: Sequence[str] = ()) -> Problem:
    """A 422 problem from pydantic's (or FastAPI's) error list, one entry per field."""
    invalid = refusals.InvalidInput.from_validation_errors(errors, prefix=prefix)
    field_errors = [FieldError(field=field, message=message) for field, message in invalid.fields]
    return Problem(422, invalid.detail, kind="invalid-input", errors=field_errors)


# For the OpenAPI document: each error status a route can answer, with the problem schema.
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses of a route. One that can answer 412 reads ``If-Match``, and a header
    that is not an entity-tag list is answered 400 (``preconditions.py``): that comes with it."""
    if 412 in statuses and 400 not in statuses:
        statuses = (400, *statuses)
    return {
        status: {
            "description": _TITLES.get(status, "Error"),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
        }
        for status in statuses
    }
