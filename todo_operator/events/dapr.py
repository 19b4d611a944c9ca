"""The Dapr sidecar's publish API over HTTP (aiohttp, which Kopf already brings).

Contract (docs.dapr.io, "Pub/sub API reference"):

- ``POST /v1.0/publish/{pubsub}/{topic}?metadata.partitionKey=...``: 204 delivered,
  403 forbidden by access controls, 404 no pubsub name or topic, 500 delivery
  failed; errors carry ``{"errorCode": ..., "message": ...}``.
- ``POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}``: a JSON array of
  ``{"entryId", "event", "contentType", "metadata"}``; 204 all delivered, 400
  pub/sub does not exist, 403 forbidden, 500 at least one failed, with
  ``{"failedEntries": [{"entryId", "error"}], "errorCode"}``.

Our events are already CloudEvents, sent as ``application/cloudevents+json``
so Dapr does not wrap them again. The partition key travels as the metadata
``partitionKey`` (Kafka's message key: one user's events share a partition).

This module only says what happened; the relay decides what it means
(retry the sidecar later, count a row's failure, dead-letter it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from todo_operator.events import schemas

# Dapr error codes that mean "this sidecar is not set up for us", not "this event is bad".
_NOT_CONFIGURED = frozenset(
    {"ERR_PUBSUB_NOT_FOUND", "ERR_PUBSUB_EMPTY", "ERR_TOPIC_EMPTY", "ERR_PUBSUB_NOT_CONFIGURED"}
)


@dataclass(frozen=True, kw_only=True)
class Message:
    entry_id: str
    event: Mapping[str, Any]
    partition_key: str


class SidecarUnavailable(Exception):
    """Nothing reached the broker and no event is to blame: not listening, timed out, 5xx, not configured."""


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """Dapr refused the request as such (4xx): the events in it are to blame."""

    status: int
    error: str


@dataclass(kw_only=True)
class BulkOutcome:
    """Which entries of a bulk request failed, and why (an empty dict: all delivered)."""

    failed: dict[str, str] = field(default_factory=dict)
    rejected: Rejected | None = None


class BulkUnsupported(Exception):
    """The sidecar does not know the (alpha) bulk endpoint: publish one by one."""


def error_text(status: int, body: bytes) -> tuple[str | None, str]:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    code = parsed.get("errorCode")
    message = parsed.get("message") or body.decode(errors="replace")[:200]
    return code, f"HTTP {status} {code or ''}: {message}".replace("  ", " ").strip()


class DaprPublisher:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        endpoint: str,
        pubsub: str,
        timeout: float = 10.0,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._pubsub = quote(pubsub, safe="")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def publish(self, *, topic: str, message: Message) -> Rejected | None:
        """Publish one event; None when delivered, :class:`Rejected` on 4xx, else raise."""
        url = f"{self._endpoint}/v1.0/publish/{self._pubsub}/{quote(topic, safe='')}"
        status, body = await self._post(
            url,
            data=orjson.dumps(message.event),
            content_type=schemas.CLOUDEVENTS_CONTENT_TYPE,
            params={"metadata.partitionKey": message.partition_key},
        )
        if status in (200, 204):
            return None
        code, text = error_text(status, body)
        if status >= 500 or code in _NOT_CONFIGURED:
            raise SidecarUnavailable(text)
        return Rejected(status=status, error=text)

    async def publish_bulk(self, *, topic: str, messages: Sequence[Message]) -> BulkOutcome:
        """Publish several events in one request; per-entry failures come back in the outcome."""
        url = f"{self._endpoint}/v1.0-alpha1/publish/bulk/{self._pubsub}/{quote(topic, safe='')}"
        entries = [
            {
                "entryId": message.entry_id,
                "event": message.event,
                "contentType": schemas.CLOUDEVENTS_CONTENT_TYPE,
                "metadata": {"partitionKey": message.partition_key},
            }
            for message in messages
        ]
        status, body = await self._post(
            # orjson: a batch of a thousand CloudEvents is encoded several times faster than by json.
            url,
            data=orjson.dumps(entries),
            content_type="application/json",
        )
        if status in (200, 204):
            return BulkOutcome()
        code, text = error_text(status, body)
        if status in (404, 405) and code is None:
            # An older sidecar without the alpha endpoint answers a bare 404.
            raise BulkUnsupported(text)
        if code in _NOT_CONFIGURED:
            raise SidecarUnavailable(text)
        if status >= 500:
            failed = _failed_entries(body)
            if not failed:
                raise SidecarUnavailable(text)
            return BulkOutcome(failed=failed)
        return BulkOutcome(rejected=Rejected(status=status, error=text))

    async def _post(
        self, url: str, *, data: bytes, content_type: str, params: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            async with self._session.post(
                url,
                data=data,
                params=params,
                headers={"Content-Type": content_type},
                timeout=self._timeout,
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SidecarUnavailable(f"{type(error).__name__}: {error}") from error


def _failed_entries(body: bytes) -> dict[str, str]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    entries = parsed.get("failedEntries") if isinstance(parsed, dict) else None
    if not isinstance(entries, list):
        return {}
    return {
        str(entry.get("entryId")): str(entry.get("error") or "failed")
        for entry in entries
        if isinstance(entry, dict) and entry.get("entryId") is not None
    }
