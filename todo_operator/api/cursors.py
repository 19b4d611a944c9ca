"""Opaque page cursors: keyset positions, signed and bound to the caller and the query.

A cursor carries the last row's sort value and uid (keyset pagination: a
stable order that neither skips nor repeats rows when others are inserted)
plus a digest of the filters and sort it was made for. It is signed with an
HMAC over the caller's id too, so a cursor cannot be forged, edited, reused
with other filters, or replayed by another user — any of which answers 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

_MAX_CURSOR_LENGTH = 1024


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Position:
    """Where the previous page ended: its last row's sort value (as text) and uid (or id)."""

    value: str | None
    key: str


def query_digest(query: Any) -> str:
    """A short digest of what a list was asked (filters and sort), JSON-serialisable input."""
    text = json.dumps(query, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _mac(secret: bytes, *, user: str, payload: bytes) -> bytes:
    return hmac.new(secret, user.encode() + b"\x00" + payload, hashlib.sha256).digest()[:16]


def encode(position: Position, *, secret: bytes, user: str, digest: str) -> str:
    payload = json.dumps(
        {"v": position.value, "k": position.key, "q": digest}, separators=(",", ":")
    ).encode()
    token = payload + _mac(secret, user=user, payload=payload)
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode(cursor: str, *, secret: bytes, user: str, digest: str) -> Position:
    if not cursor or len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursor("the cursor is malformed")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor("the cursor is malformed") from None
    payload, mac = raw[:-16], raw[-16:]
    if len(raw) <= 16 or not hmac.compare_digest(mac, _mac(secret, user=user, payload=payload)):
        raise InvalidCursor("the cursor is not valid for this caller")
    try:
        fields = json.loads(payload)
    except ValueError:
        raise InvalidCursor("the cursor is malformed") from None
    if not isinstance(fields, dict) or fields.get("q") != digest:
        raise InvalidCursor("the cursor belongs to a list with other filters or another sort")
    value, key = fields.get("v"), fields.get("k")
    if not (value is None or isinstance(value, str)) or not isinstance(key, str):
        raise InvalidCursor("the cursor is malformed")
    return Position(value=value, key=key)
