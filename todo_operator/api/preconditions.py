"""ETags and ``If-Match`` (RFC 9110 §13.1.1): optimistic concurrency over the spec's generation.

The ETag of an object names its uid and ``metadata.generation``, which moves
only when the spec does (the operator's status writes leave it alone). A
write with ``If-Match`` is checked here and sent to the API server with the
resourceVersion just read, so nothing can slip in between; a mismatch
is :class:`errors.Stale` (412), a header that is not an entity-tag list
:class:`errors.MalformedHeader` (400).

If-Match uses the strong comparison (§8.8.3.2): a weak tag (``W/"…"``)
never matches, whatever its opaque part, because a weak validator does not
promise that the representation is the one the client edited. Our ETags
are strong; a client that sends one back as weak has changed its meaning.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final, Literal

from todo_operator.api import errors

ANY: Final = "*"
# One element of an entity-tag list and what follows it (RFC 9110 §5.6.1, §8.8.3):
# OWS [ entity-tag ] OWS ( "," / end ), where entity-tag = [ %s"W/" ] DQUOTE *etagc DQUOTE and
# etagc = %x21 / %x23-7E / obs-text. A comma is an etagc: the list is scanned, not split on commas.
_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(,|\Z)')


@dataclasses.dataclass(frozen=True)
class EntityTag:
    opaque: str  # between the quotes
    weak: bool = False


def etag(version: str) -> str:
    return f'"{version}"'


def parse_entity_tags(value: str, *, header_name: str) -> Literal["*"] | tuple[EntityTag, ...]:
    """``If-Match = "*" / #entity-tag`` (RFC 9110 §13.1.1), or refused naming the header.

    List elements are separated by commas with optional whitespace, and
    empty elements are skipped (§5.6.1.2). An empty list is valid and
    matches nothing.
    """
    if value.strip(" \t") == ANY:
        return ANY
    tags = []
    position = 0
    while position < len(value):
        match = _ELEMENT.match(value, position)
        if match is None:
            raise _malformed(header_name, value[position:].strip(" \t").split(",")[0])
        if match.group(2) is not None:
            tags.append(EntityTag(match.group(2), weak=match.group(1) is not None))
        position = match.end()
        if not match.group(3):  # the end of the value
            break
    return tuple(tags)


def required_version(header: str | None, *, current: str) -> str | None:
    """The resourceVersion to send with the write; :class:`errors.Stale` if no strong tag matches.

    None when there is no condition to keep: no header, or ``*`` (any current
    representation — the object was just read, so it has one).
    """
    if header is None:
        return None
    accepted = parse_entity_tags(header, header_name="If-Match")
    if accepted == ANY:
        return None
    if not any(not tag.weak and tag.opaque == current for tag in accepted):
        raise errors.Stale()
    return current


def _malformed(header_name: str, element: str) -> errors.MalformedHeader:
    message = f'{element[:40]!r} is not an entity-tag (a quoted ETag such as "…", or * alone)'
    return errors.MalformedHeader(f"{header_name}: {message}", fields=[(header_name, message)])
