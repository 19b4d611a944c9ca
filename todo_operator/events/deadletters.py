"""Dead letters, for the admin: what kept failing, and putting it back.

A dead letter is an outbox row that failed on its own ``max_attempts`` times
(or could never become a valid CloudEvent). Retrying re-queues it into the
outbox as the same event, with the same id, so a consumer that did see it
once drops the repeat. It goes to the end of the queue: events of the same
user recorded after it were published meanwhile (the reason it was set
aside), so it arrives after them. The admin HTTP endpoints of the REST shim
call these functions.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

from todo_operator.clock import Clock
from todo_operator.store.outbox import Backlog, DeadLetter, OutboxStore


@dataclass(frozen=True, kw_only=True)
class RetryResult:
    dead_letter_id: int
    requeued: bool
    outbox_id: int | None


class DeadLetters:
    def __init__(self, *, store: OutboxStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def list(self, *, include_retried: bool = False, limit: int = 100) -> builtins.list[DeadLetter]:
        """Waiting dead letters, oldest first (with ``include_retried``: those already re-queued too)."""
        return await self._store.dead_letters(include_retried=include_retried, limit=limit)

    async def count(self) -> Backlog:
        """How many events wait in the outbox and in the dead letters (for metrics and the admin)."""
        return await self._store.backlog()

    async def retry(self, *, dead_letter_id: int, now: datetime | None = None) -> RetryResult:
        """Re-queue one dead letter; ``requeued`` is False if it is unknown or was retried already.

        An event goes back into the outbox; a reminder that could not be sent becomes
        pending again and is sent by its delivery mode (late, within the look-back).
        """
        at = now or self._clock.now()
        if await self._store.revive_reminder(dead_letter_id=dead_letter_id, now=at):
            return RetryResult(dead_letter_id=dead_letter_id, requeued=True, outbox_id=None)
        outbox_id = await self._store.requeue(dead_letter_id=dead_letter_id, now=at)
        return RetryResult(dead_letter_id=dead_letter_id, requeued=outbox_id is not None, outbox_id=outbox_id)

    async def retry_all(self, *, limit: int = 1000) -> builtins.list[RetryResult]:
        """Re-queue every waiting dead letter (after fixing what made them fail), oldest first."""
        now = self._clock.now()
        return [
            await self.retry(dead_letter_id=letter.id, now=now)
            for letter in await self._store.dead_letters(limit=limit)
        ]
