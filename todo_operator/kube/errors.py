"""What the Kubernetes API answered, as this project's own exception types.

Services and reconcilers never catch a library's exceptions: every call to
the API server goes through :func:`translated`, the one place where
lightkube's and its transport's errors become these. A
:class:`TransientKubeError` is worth retrying; anything else is not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx2 as httpx
import lightkube


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


class Invalid(KubeError):
    """The API server refused the object (422); ``causes`` are ``(field, message)`` pairs."""

    def __init__(self, message: str, *, causes: list[tuple[str, str]]) -> None:
        super().__init__(message, code=422, reason="Invalid")
        self.causes = causes


class TransientKubeError(KubeError):
    """The API server is unreachable, overloaded or failing (5xx, 429): retry with backoff."""


def translate(error: Exception) -> KubeError:
    """The project's error for what lightkube raised (an answer, or no answer at all)."""
    if not isinstance(error, lightkube.ApiError):
        return TransientKubeError(f"Kubernetes API unreachable: {error}")
    status = error.status
    code, reason, message = status.code, status.reason, status.message or str(error)
    if code == 404:
        return NotFound(message, code=code, reason=reason)
    if code == 409:
        kind = AlreadyExists if reason == "AlreadyExists" else Conflict
        return kind(message, code=code, reason=reason)
    if code == 422:
        # Each field's message is kept, so that it reaches the REST client as the API server said it.
        causes = [
            (cause.field or "", cause.message or "invalid")
            for cause in ((status.details.causes or []) if status.details is not None else [])
        ]
        return Invalid(status.message or "invalid object", causes=causes)
    if code is not None and (code >= 500 or code == 429):
        return TransientKubeError(message, code=code, reason=reason)
    return KubeError(message, code=code, reason=reason)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise what the API server answered inside the block as a :class:`KubeError`."""
    try:
        yield
    except (lightkube.ApiError, httpx.HTTPError, OSError) as error:
        raise translate(error) from error
