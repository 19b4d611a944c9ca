"""What the API's services refuse, said without HTTP.

Services and the ETag checks raise these; :mod:`todo_operator.api.app` says
each as its RFC 9457 problem at the edge (``_REFUSALS`` there: a status and a
problem type per class). ``detail`` is shown to the user as it is, and
``fields`` puts each message beside the field it is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class Refused(Exception):
    """A request the API refuses, and why."""

    def __init__(self, detail: str, *, fields: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = list(fields)  # (field, message)


class NotFound(Refused):
    """No object of the caller by that name (another user's answers the same: it is not theirs)."""

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"you have no {what} named {name!r}")


class AlreadyExists(Refused):
    def __init__(self, what: str, name: str | None, *, made_with: str | None = None) -> None:
        how = f" (made with {made_with})" if made_with else ""
        super().__init__(f"you already have a {what} named {name!r}{how}")


class Frozen(Refused):
    """The object is history (the cluster pruned it): it can be read, not changed."""


class NotSkippable(Refused):
    """Only the current, open occurrence of a live recurring task can be skipped."""


class InvalidInput(Refused):
    """Fields that are not valid as sent."""

    @classmethod
    def on(cls, field: str, message: str, *, detail: str | None = None) -> InvalidInput:
        return cls(detail or message, fields=[(field, message)])

    @classmethod
    def from_validation_errors(
        cls, errors: Sequence[Mapping[str, Any]], *, prefix: Sequence[str] = ()
    ) -> InvalidInput:
        """From pydantic's (or FastAPI's) error list, one entry per field."""
        fields = [
            (
                field_path([*prefix, *error.get("loc", ())]) or "body",
                str(error.get("msg", "invalid")).removeprefix("Value error, "),
            )
            for error in errors
        ]
        summary = "; ".join(f"{field}: {message}" for field, message in fields[:5])
        if len(fields) > 5:
            summary += f"; and {len(fields) - 5} more"
        return cls(summary or "the request is invalid", fields=fields)


class InvalidSchedule(InvalidInput):
    """A schedule the recurrence engine refuses (or cannot list within its budget)."""


class InvalidCursor(Refused):
    """A page cursor that is not one this API gave this caller for this query."""


class Stale(Refused):
    """If-Match names a version the object no longer has."""

    def __init__(self) -> None:
        super().__init__(
            "the object changed since you read it (If-Match does not match its ETag): read it again and retry"
        )


class MalformedHeader(Refused):
    """A request header that is not what its grammar says."""


def field_path(location: Sequence[int | str]) -> str:
    """``("body", "schedule", "interval")`` → ``schedule.interval``; query/path/header names as they are."""
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts)
