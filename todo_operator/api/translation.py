"""The project's errors as RFC 9457 problems: refusals, Kubernetes, PostgreSQL and engine errors.

Used by the app's exception handlers (the REST API) and by the web page, which
shows the same refusal at the form field it concerns.
"""

from __future__ import annotations

import re

import psycopg

from todo_operator import kube
from todo_operator.api import errors, problems
from todo_operator.schedule_engine import EngineBusy

# Each refusal of the services as the problem it is answered with: (status, problem type).
_REFUSALS: dict[type[errors.Refused], tuple[int, str]] = {
    errors.NotFound: (404, "not-found"),
    errors.AlreadyExists: (409, "conflict"),
    errors.Frozen: (409, "conflict"),
    errors.NotSkippable: (409, "conflict"),
    errors.InvalidSchedule: (422, "invalid-schedule"),
    errors.InvalidInput: (422, "invalid-input"),
    errors.InvalidCursor: (400, "invalid-cursor"),
    errors.Stale: (412, "precondition-failed"),
    errors.MalformedHeader: (400, "malformed-header"),
}


def _refusal(error: errors.Refused) -> problems.Problem:
    # The most specific class wins (InvalidSchedule is an InvalidInput).
    status, kind = next(_REFUSALS[cls] for cls in type(error).__mro__ if cls in _REFUSALS)
    field_errors = [problems.FieldError(field=field, message=message) for field, message in error.fields]
    return problems.Problem(status, error.detail, kind=kind, errors=field_errors)


def translate(error: Exception) -> problems.Problem:
    """The project's own errors as problems; anything else is a bug (500)."""
    if isinstance(error, problems.Problem):
        return error
    if isinstance(error, errors.Refused):
        return _refusal(error)
    if isinstance(error, kube.Invalid):
        # The API server's words name the object by its cluster name (the caller's prefix and
        # all) and the field by its path in the manifest: say it in the terms of the request.
        field_errors = [
            problems.FieldError(field=_request_field(field), message=_without_object_names(message))
            for field, message in error.causes
        ]
        detail = "; ".join(f"{e.field}: {e.message}" for e in field_errors) or _without_object_names(
            str(error)
        )
        return problems.Problem(422, detail, kind="invalid-object", errors=field_errors)
    if isinstance(error, kube.TransientKubeError):
        return problems.Problem(
            503, "the Kubernetes API is unavailable; retry shortly", headers={"Retry-After": "5"}
        )
    if isinstance(error, kube.NotFound):
        return problems.Problem(404, str(error), kind="not-found")
    if isinstance(error, kube.KubeError):
        status = error.code if error.code in (400, 403, 409, 422) else 502
        detail = f"the Kubernetes API refused: {_without_object_names(str(error))}"
        return problems.Problem(status, detail, kind="kubernetes")
    if isinstance(error, EngineBusy):
        # One user's share of the engine is a 429 (theirs to slow down); the whole engine busy
        # is a 503. Either way the work takes at most one compile budget (~75 ms): retry soon.
        if error.everyone:
            return problems.Problem(503, str(error), kind="engine-busy", headers={"Retry-After": "1"})
        return problems.Problem(429, str(error), kind="engine-busy", headers={"Retry-After": "1"})
    if isinstance(error, OverflowError):
        # The domain's duration parser lets 20-digit counts reach timedelta (reported upstream).
        return problems.Problem(422, "a number in the request is too large", kind="invalid-input")
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return problems.Problem(
            503, "the database is unavailable; retry shortly", headers={"Retry-After": "5"}
        )
    return problems.Problem(500, "an unexpected error; it was logged", kind="internal")


# A cluster name of ours, quoted as the API server quotes names: "u1a2b3c4d5e-passport".
_OBJECT_NAME = re.compile(r'"u[0-9a-f]{10}-([a-z0-9][-a-z0-9.]*)"')
_MANIFEST_INDEX = re.compile(r"\[(\d+)\]")


def _without_object_names(message: str) -> str:
    """The API server's message with our cluster names shown as the names users gave."""
    return _OBJECT_NAME.sub(r'"\1"', message)


def _request_field(path: str) -> str:
    """``spec.taskTemplate.tags[1]`` → ``taskTemplate.tags.1``: the request's field, as pydantic names it."""
    return _MANIFEST_INDEX.sub(r".\1", path.removeprefix("spec."))


# Errors of the parts beside the services that are refusals of the request, not faults: a form shows them.
REFUSED_BY_OTHERS: tuple[type[Exception], ...] = (kube.KubeError, EngineBusy, OverflowError)
