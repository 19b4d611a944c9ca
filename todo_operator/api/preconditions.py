"""ETags and ``If-Match`` (RFC 9110 §13.1.1): optimistic concurrency over the spec's generation.

The ETag of an object names its uid and ``metadata.generation``, which moves
only when the spec does (the operator's status writes leave it alone). A
write with ``If-Match`` is checked here and sent to the API server with the
resourceVersion just read, so nothing can slip in between; a mismatch
answers 412.
"""

from __future__ import annotations

from todo_operator.api import problems


def etag(version: str) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> list[str] | None:
    """The resourceVersions an ``If-Match`` accepts; None for no header or ``*`` (any)."""
    if header is None or header.strip() == "*":
        return None
    versions = []
    for part in header.split(","):
        tag = part.strip().removeprefix("W/")
        if len(tag) >= 2 and tag.startswith('"') and tag.endswith('"'):
            versions.append(tag[1:-1])
        else:
            versions.append(tag)  # unquoted: tolerated, compared as it is
    return versions


def required_version(header: str | None, *, current: str) -> str | None:
    """The resourceVersion to send with the write, or 412 when ``If-Match`` names another one."""
    accepted = parse_if_match(header)
    if accepted is None:
        return None
    if current not in accepted:
        raise stale()
    return current


def stale() -> problems.Problem:
    return problems.Problem(
        412,
        "the object changed since you read it (If-Match does not match its ETag): read it again and retry",
        kind="precondition-failed",
    )
