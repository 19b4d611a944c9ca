"""Per-user limits of writes (and of schedule previews): a sliding window of instants, time passed in.

Kept in memory, so the limit is per replica (N replicas allow N times the
rate); it protects the API server and the operator from one user's loop,
not a billing quota. Memory stays bounded: a user's window holds at most
``limit`` instants and is dropped once it empties.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

from todo_operator.api import problems


class WriteLimiter:
    def __init__(self, *, limit: int, window: timedelta = timedelta(minutes=1), what: str = "writes") -> None:
        self._limit = limit
        self._what = what
        self._window = window
        self._writes: dict[str, deque[datetime]] = {}

    def check(self, user: str, *, now: datetime) -> None:
        """Count one write for ``user`` at ``now``, or raise a 429 problem with ``Retry-After``."""
        writes = self._writes.setdefault(user, deque())
        while writes and writes[0] <= now - self._window:
            writes.popleft()
        if len(writes) >= self._limit:
            wait = (writes[0] + self._window - now).total_seconds()
            retry_after = max(1, math.ceil(wait))
            raise problems.Problem(
                429,
                f"at most {self._limit} {self._what} per minute: retry in {retry_after} s",
                kind="rate-limited",
                headers={"Retry-After": str(retry_after)},
            )
        writes.append(now)
        self._forget_idle(now=now)

    def _forget_idle(self, *, now: datetime) -> None:
        # Cheap amortised clean-up: look at a few users per call.
        for user in list(self._writes)[:8]:
            writes = self._writes[user]
            if writes and writes[-1] <= now - self._window:
                del self._writes[user]
