"""Task updates for the pages open on this replica: fan-out per user, with a window to replay.

Dapr delivers each ``task-updates`` event to the API (``/events/task-updates``);
the hub hands it to every open page of its owner as a server-sent event.
Positions are ``<epoch>-<sequence>``: the page is rendered with the position
it shows (:meth:`LiveHub.position`) and connects from there, and a reconnect
sends the last one it got (``Last-Event-ID``), so an update that comes
between the render and the connection, or while the connection was down, is
replayed. When it cannot be — the window has moved past it, or the position
is another replica's or an earlier process's — the page is told to
``resync`` (load its view again): it is never left showing a state it
missed. A page that reads too slowly is told the same, not waited for.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

_QUEUE = 256


@dataclass(frozen=True, kw_only=True)
class LiveEvent:
    id: str
    kind: str  # "update", or "resync": load the view again
    data: dict[str, Any]


RESYNC = "resync"


class LiveHub:
    def __init__(self, *, window: int = 4096) -> None:
        self._epoch = secrets.token_hex(4)
        self._sequence = 0
        self._recent: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=window)
        self._listeners: dict[str, set[asyncio.Queue[LiveEvent]]] = {}

    def position(self) -> str:
        return f"{self._epoch}-{self._sequence}"

    def publish(self, owner: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        self._recent.append((self._sequence, owner, data))
        event = LiveEvent(id=self.position(), kind="update", data=data)
        for queue in self._listeners.get(owner, ()):
            if queue.full():
                # Too slow to keep up: drop what it has not read and tell it to load the view again.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(LiveEvent(id=self.position(), kind=RESYNC, data={}))
            else:
                queue.put_nowait(event)

    def _replay(self, owner: str, since: str | None) -> list[LiveEvent]:
        if not since:
            return []
        epoch, _, sequence = since.partition("-")
        oldest = self._recent[0][0] if self._recent else self._sequence + 1
        if epoch != self._epoch or not sequence.isdigit() or int(sequence) > self._sequence:
            return [LiveEvent(id=self.position(), kind=RESYNC, data={})]
        seen = int(sequence)
        if seen + 1 < oldest:
            return [LiveEvent(id=self.position(), kind=RESYNC, data={})]
        return [
            LiveEvent(id=f"{self._epoch}-{number}", kind="update", data=data)
            for number, whose, data in self._recent
            if number > seen and whose == owner
        ]

    async def follow(self, owner: str, *, since: str | None) -> AsyncIterator[LiveEvent]:
        """What the owner's page must see after ``since``, then every update as it comes."""
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=_QUEUE)
        # Replay and registration happen without an await between them: nothing falls in the gap.
        backlog = self._replay(owner, since)
        self._listeners.setdefault(owner, set()).add(queue)
        try:
            for event in backlog:
                yield event
            while True:
                yield await queue.get()
        finally:
            listeners = self._listeners.get(owner, set())
            listeners.discard(queue)
            if not listeners:
                self._listeners.pop(owner, None)
