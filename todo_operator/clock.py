"""Time as a dependency: the operator and the dispatcher take a clock.

The domain never reads the clock; the edges pass ``now`` in. Production uses
:class:`SystemClock`; tests use :class:`ManualClock` and move it, so no test
sleeps for a due date.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when time jumps (a test moved it); real time never does."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(tz=UTC)

    def on_change(self, callback: Callable[[], None]) -> None:
        return None  # real time only flows: whoever waits computes its own timeout


class ManualClock:
    """A clock that stands still until a test moves it (thread-safe: the operator runs in a thread)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            now = self._now
        self._notify()
        return now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = instant
        self._notify()

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()
