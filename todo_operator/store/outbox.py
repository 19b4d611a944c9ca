"""The outbox from the relay's side: claim rows, mark them, dead-letter them, prune them.

Several relays may run at once (one per operator replica). Each claims a batch
by leasing it (``claimed_by``/``claimed_until``) in one short transaction, so
a row is published by one relay in the normal case and by another only after
the first one died (its lease ran out: at least once, never lost).

Order per partition key (one user's events) is the contract with consumers.
``FOR UPDATE SKIP LOCKED`` alone cannot keep it across relays: relay B would
skip the rows relay A is claiming and take a later row of the same user. So a
row is claimable only if no earlier unpublished row of its partition key is
leased or waiting out a backoff, and claims are serialized by a transaction
advisory lock (one short query each, so they hardly wait). Within a claimed
batch the relay itself keeps the order.

Claiming ahead. A relay claims its next batch while the current one is being
published (``ahead_of``: the current batch's lease). The rows under that one
lease do not hold back later rows of their users: the relay publishes the
next batch only after the current one is settled, and holds back any row
behind one of the current batch that did not go through. Each batch has a
lease of its own (``claimed_by`` is ``<relay>#<batch>``), so rows of an older
batch left leased by an error hold their users back like a dead relay's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from psycopg.rows import class_row
from psycopg.types.json import set_json_loads

from todo_operator.store.repository import Repository

# Any constant works: it only has to be the same for every relay (it spells "todo").
_CLAIM_LOCK = 0x746F646F


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    id: int
    event_id: str
    topic: str
    event_type: str
    subject: str
    partition_key: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    traceparent: str | None


@dataclass(frozen=True, kw_only=True)
class Failure:
    """A failure that is the row's own; the relay decides when it retries."""

    outbox_id: int
    error: str
    next_attempt_at: datetime


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    id: int
    outbox_id: int | None  # None for a reminder that could not be sent (reminder_uid)
    reminder_uid: str | None
    event_id: str
    topic: str
    event_type: str | None
    subject: str | None
    partition_key: str | None
    payload: dict[str, Any]
    attempts: int
    last_error: str | None
    failed_at: datetime
    retried_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Backlog:
    unpublished: int
    oldest_created_at: datetime | None
    dead_letters: int


_ROW_COLUMNS = (
    "id, event_id::text AS event_id, topic, event_type, subject, partition_key, payload, created_at,"
    " attempts, traceparent"
)

_CLAIM = f"""
WITH claimable AS (
    SELECT o.id FROM outbox o
    WHERE o.published_at IS NULL
      AND (o.claimed_until IS NULL OR o.claimed_until <= %(now)s)
      AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= %(now)s)
      AND NOT EXISTS (
          SELECT 1 FROM outbox earlier
          WHERE earlier.partition_key = o.partition_key
            AND earlier.published_at IS NULL
            AND earlier.id < o.id
            -- Spelled out so that the partial index outbox_holding applies.
            AND (earlier.claimed_until IS NOT NULL OR earlier.next_attempt_at IS NOT NULL)
            AND (earlier.claimed_until > %(now)s OR earlier.next_attempt_at > %(now)s)
            -- The batch being published right now by the relay claiming ahead of it.
            AND (earlier.next_attempt_at > %(now)s OR earlier.claimed_by IS DISTINCT FROM %(ahead_of)s)
          -- OFFSET 0 keeps this a per-row index probe: planned as an anti join, it can
          -- fall into a nested loop over every held row for every candidate row.
          OFFSET 0
      )
    ORDER BY o.id
    LIMIT %(limit)s
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET claimed_by = %(relay)s, claimed_until = %(until)s
FROM claimable WHERE outbox.id = claimable.id
RETURNING {", ".join("outbox." + c.strip() for c in _ROW_COLUMNS.split(","))}
"""

# Serialize claims, and keep the claim's plan a walk of ``outbox_unpublished`` in id order
# that stops at the limit. Right after a burst (statistics not analyzed yet) the planner
# guesses that a handful of rows are unpublished and prefers a bitmap scan of all of them,
# the NOT EXISTS probe for each, and a sort: 35 ms instead of 3 ms for 1,000 rows out of a
# 25,000-row backlog. Turning sorts off for this one transaction (set_config(..., true) is
# SET LOCAL) leaves the ordered index scan as the only cheap plan.
_CLAIM_SETUP = "SELECT pg_advisory_xact_lock(%s), set_config('enable_sort', 'off', true)"

# Rows in the past are left out: one that is claimable by its own times but still not
# claimed waits behind an earlier row of its user, whose own time is the one that counts.
_NEXT_CLAIMABLE = """
SELECT min(GREATEST(claimed_until, next_attempt_at)) FROM outbox
-- Spelled out so that the partial index outbox_holding applies.
WHERE published_at IS NULL AND (claimed_until IS NOT NULL OR next_attempt_at IS NOT NULL)
  AND GREATEST(claimed_until, next_attempt_at) > %(now)s
"""

_MARK_PUBLISHED = """
UPDATE outbox SET published_at = %s, attempts = attempts + 1, last_error = NULL,
                  claimed_by = NULL, claimed_until = NULL, next_attempt_at = NULL
WHERE id = ANY(%s::bigint[])
"""

# After a database error mid-settle: what went through is marked (once), what the batch's lease
# still holds is given back at once instead of waiting out the lease.
_MARK_UNMARKED = """
UPDATE outbox SET published_at = %s, attempts = attempts + 1, last_error = NULL,
                  claimed_by = NULL, claimed_until = NULL, next_attempt_at = NULL
WHERE id = ANY(%s::bigint[]) AND published_at IS NULL
"""

_RELEASE_LEASED = """
UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
WHERE id = ANY(%s::bigint[]) AND claimed_by = %s AND published_at IS NULL
"""

_RELEASE = """
UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, last_error = COALESCE(%s, last_error)
WHERE id = ANY(%s::bigint[]) AND published_at IS NULL
"""

_RECORD_FAILURE = """
UPDATE outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s,
                  claimed_by = NULL, claimed_until = NULL
WHERE id = %s AND published_at IS NULL
"""

_REVIVE_REMINDER = """
WITH letter AS (
    UPDATE dead_letters SET retried_at = %(now)s
    WHERE id = %(id)s AND retried_at IS NULL AND reminder_uid IS NOT NULL
    RETURNING reminder_uid
)
UPDATE reminders SET phase = CASE delivery WHEN 'inline' THEN 'Pending' ELSE 'Scheduled' END,
                     attempts = 0, last_error = NULL, failure_reason = NULL, late = false,
                     updated_at = %(now)s
FROM letter
WHERE reminders.uid = letter.reminder_uid AND reminders.phase = 'Failed' AND reminders.deleted_at IS NULL
RETURNING reminders.uid
"""

_DEAD_LETTER = """
WITH moved AS (DELETE FROM outbox WHERE id = %(id)s AND published_at IS NULL RETURNING *)
INSERT INTO dead_letters (outbox_id, event_id, topic, payload, attempts, last_error, failed_at,
                          event_type, subject, partition_key, traceparent, created_at)
SELECT id, event_id, topic, payload, attempts + %(counted)s, %(error)s, %(now)s,
       event_type, subject, partition_key, traceparent, created_at
FROM moved
"""

_REQUEUE = """
WITH letter AS (
    UPDATE dead_letters SET retried_at = %(now)s
    WHERE id = %(id)s AND retried_at IS NULL AND event_type IS NOT NULL
    RETURNING *
)
INSERT INTO outbox (event_id, topic, event_type, subject, partition_key, payload, created_at, traceparent)
-- Letters from before created_at was kept fall back to when they failed.
SELECT event_id, topic, event_type, subject, partition_key, payload,
       COALESCE(created_at, failed_at), traceparent
FROM letter
ON CONFLICT (event_id) DO NOTHING
RETURNING id
"""

_PRUNE = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE published_at IS NOT NULL AND published_at < %s LIMIT %s
)
"""


def _id_array(ids: Sequence[int]) -> str:
    """Row ids as a PostgreSQL array literal: a batch's thousand ids in microseconds, not milliseconds."""
    return "{" + ",".join(map(str, ids)) + "}"


class OutboxStore(Repository):
    """The relay's and the admin's queries over the outbox and the dead letters."""

    async def claim(
        self,
        *,
        relay: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        ahead_of: str | None = None,
    ) -> list[OutboxRow]:
        """Lease up to ``limit`` publishable rows to ``relay``, oldest first (see the module docstring).

        ``ahead_of``: the lease of the batch the caller is publishing meanwhile; its rows do
        not hold back later rows of their partition keys.
        """
        async with self._transaction() as connection:
            await connection.execute(_CLAIM_SETUP, (_CLAIM_LOCK,))
            async with connection.cursor(row_factory=class_row(OutboxRow)) as cursor:
                # A claim loads a thousand payloads; orjson parses them several times faster.
                set_json_loads(orjson.loads, cursor)
                await cursor.execute(
                    _CLAIM,
                    {"now": now, "limit": limit, "relay": relay, "until": now + lease, "ahead_of": ahead_of},
                )
                rows = await cursor.fetchall()
        return sorted(rows, key=lambda row: row.id)

    async def mark_published(self, *, ids: Sequence[int], now: datetime) -> None:
        if ids:
            async with self._connection() as connection:
                await connection.execute(_MARK_PUBLISHED, (now, _id_array(ids)))

    async def recover(
        self, *, lease: str, ids: Sequence[int], published: Sequence[int], now: datetime
    ) -> int:
        """Settle a batch whose settling failed: mark ``published``, give back the rest it holds.

        One transaction on a fresh connection; returns how many rows were given back.
        """
        async with self._transaction() as connection:
            if published:
                await connection.execute(_MARK_UNMARKED, (now, _id_array(published)))
            cursor = await connection.execute(_RELEASE_LEASED, (_id_array(ids), lease))
            return cursor.rowcount

    async def release(self, *, ids: Sequence[int], error: str | None = None) -> None:
        """Give rows back unattempted (or not attributable to them: the sidecar was down)."""
        if ids:
            async with self._connection() as connection:
                await connection.execute(_RELEASE, (error, _id_array(ids)))

    async def record_failures(self, *, failures: Sequence[Failure]) -> None:
        if failures:
            async with self._connection() as connection, connection.cursor() as cursor:
                await cursor.executemany(
                    _RECORD_FAILURE, [(f.error, f.next_attempt_at, f.outbox_id) for f in failures]
                )

    async def dead_letter(self, *, ids_and_errors: Sequence[tuple[int, str]], now: datetime) -> None:
        """Move rows to ``dead_letters`` (counting the attempt that just failed)."""
        if ids_and_errors:
            async with self._transaction() as connection, connection.cursor() as cursor:
                await cursor.executemany(
                    _DEAD_LETTER,
                    [
                        {"id": outbox_id, "error": error, "now": now, "counted": 1}
                        for outbox_id, error in ids_and_errors
                    ],
                )

    async def prune(self, *, published_before: datetime, chunk: int = 10_000) -> int:
        """Delete rows published before the cutoff, in chunks (short transactions); return how many."""
        total = 0
        while True:
            async with self._connection() as connection:
                cursor = await connection.execute(_PRUNE, (published_before, chunk))
                total += cursor.rowcount
            if cursor.rowcount < chunk:
                return total

    async def next_claimable_at(self, *, now: datetime) -> datetime | None:
        """When a row that cannot be claimed now may become claimable: a lease or a backoff ends.

        A relay with nothing to claim sleeps until then (or a notification): a dead relay's rows
        and rows waiting out a failure need no one to write again to be published.
        """
        async with self._connection() as connection:
            cursor = await connection.execute(_NEXT_CLAIMABLE, {"now": now})
            found = await cursor.fetchone()
        return found[0] if found else None

    async def backlog(self) -> Backlog:
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL"
            )
            unpublished, oldest = await cursor.fetchone() or (0, None)
            cursor = await connection.execute("SELECT count(*) FROM dead_letters WHERE retried_at IS NULL")
            (dead,) = await cursor.fetchone() or (0,)
        return Backlog(unpublished=unpublished, oldest_created_at=oldest, dead_letters=dead)

    async def dead_letters(self, *, include_retried: bool = False, limit: int = 100) -> list[DeadLetter]:
        query = (
            "SELECT id, outbox_id, reminder_uid::text AS reminder_uid, event_id::text AS event_id, topic,"
            " event_type, subject, partition_key,"
            " payload, attempts, last_error, failed_at, retried_at FROM dead_letters"
            + ("" if include_retried else " WHERE retried_at IS NULL")
            + " ORDER BY id LIMIT %s"
        )
        async with (
            self._connection() as connection,
            connection.cursor(row_factory=class_row(DeadLetter)) as cursor,
        ):
            await cursor.execute(query, (limit,))
            return await cursor.fetchall()

    async def revive_reminder(self, *, dead_letter_id: int, now: datetime) -> bool:
        """A reminder's dead letter: make the reminder pending again (attempts start over)."""
        async with self._transaction() as connection:
            cursor = await connection.execute(_REVIVE_REMINDER, {"id": dead_letter_id, "now": now})
            return await cursor.fetchone() is not None

    async def requeue(self, *, dead_letter_id: int, now: datetime) -> int | None:
        """Put a dead letter back into the outbox as the same event; return its new outbox id.

        None when there is no such waiting dead letter (unknown, or already retried).
        """
        async with self._transaction() as connection:
            cursor = await connection.execute(_REQUEUE, {"id": dead_letter_id, "now": now})
            found = await cursor.fetchone()
        return int(found[0]) if found else None
