"""The outbox relay: recorded events out to the Dapr sidecar, in order per user, at least once.

One cycle claims a batch (see :mod:`todo_operator.store.outbox` for how
several relays share the work), turns each row into its CloudEvent (and, for
a task event, the compact ``task-updates`` record), publishes, and marks.

Claiming ahead. While a full batch is being published, the next one is
claimed (a two-stage pipeline: the database works on the next claim while the
sidecar and this process work on the current batch). It is published only
after the current one is settled, and a row of it whose user has an earlier
row in the current batch that did not go through is given back untouched
(``held_back``), so claiming ahead never changes the order.

Order. Dapr's bulk publish "does not guarantee any ordering of messages", so
a bulk request never holds two events of the same partition key: a batch is
cut into waves (wave *k* holds each user's *k*-th event of the batch) and a
wave is published only after the previous one was delivered. A user whose
event failed gets nothing more published in this batch.

Whose fault. A failure is counted against a row (``attempts``, then dead
letters after ``max_attempts``) only when it is that row's own: Dapr rejected
it (4xx), or it failed while other events of the same wave went through.
When nothing went through (not listening, timed out, 5xx for everything, pub/
sub not configured), the sidecar or the broker is down (F9): the rows go back
untouched and the whole relay backs off, exponentially and capped, until
publishing works again, so an outage fills the outbox instead of the dead
letters. Attempts are bounded: ``max_attempts`` per event here, times the
sidecar's own outbound retries (``manifests/dapr/resiliency.yaml``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
import psycopg
from opentelemetry import trace
from prometheus_client import CollectorRegistry
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from todo_operator.clock import Clock, SystemClock
from todo_operator.events import dapr, schemas
from todo_operator.store import pool as pools
from todo_operator.store import wakeups as wakeup_channels
from todo_operator.store.outbox import Failure, OutboxRow, OutboxStore
from todo_operator.telemetry import tracing
from todo_operator.telemetry.metrics import RelayMetrics

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

# With LISTEN/NOTIFY an idle relay still looks this often: the notifications are the
# rule, this only bounds the cost of a bug in them.
_LONGEST_IDLE_SECONDS = 60.0


class RelaySettings(BaseSettings):
    """``todo-operator relay`` and the relay inside ``todo-operator run`` (``TODO_*`` variables)."""

    model_config = SettingsConfigDict(env_prefix="TODO_", extra="ignore")

    database_url: str = Field(description="PostgreSQL DSN")
    # Dapr's own convention is DAPR_HTTP_PORT (default 3500) on the loopback interface.
    dapr_http_endpoint: str = Field(
        default_factory=lambda: f"http://127.0.0.1:{os.environ.get('DAPR_HTTP_PORT', '3500')}",
        description="the Dapr sidecar's HTTP API; default: http://127.0.0.1:$DAPR_HTTP_PORT (3500 if unset)",
    )
    pubsub_name: str = Field(default="pubsub", description="the Dapr pub/sub component events go to")
    relay_batch_size: int = Field(default=500, ge=1, le=10_000, description="outbox rows claimed per batch")
    relay_max_attempts: int = Field(default=10, ge=1, description="publish attempts before a dead letter")
    relay_bulk: bool = Field(default=True, description="use Dapr's (alpha) bulk publish endpoint")
    relay_lease_seconds: float = Field(default=60.0, gt=0, description="a dead relay's rows wait this long")
    listen_notify: bool = Field(
        default=True,
        description="learn of new outbox rows through PostgreSQL LISTEN/NOTIFY;"
        " false: poll every relay_idle_seconds (behind PgBouncer in transaction mode)",
    )
    relay_idle_seconds: float = Field(
        default=0.05, gt=0, description="poll interval when nothing is waiting, without LISTEN/NOTIFY"
    )
    relay_backoff_seconds: float = Field(default=0.5, gt=0, description="first wait while Dapr is down")
    relay_backoff_cap_seconds: float = Field(default=30.0, gt=0, description="longest wait, Dapr down")
    relay_retry_seconds: float = Field(default=1.0, gt=0, description="first wait before retrying a row")
    relay_retry_cap_seconds: float = Field(default=300.0, gt=0, description="longest wait before a retry")
    relay_publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="timeout of one publish request"
    )
    outbox_retention_hours: float = Field(default=24.0 * 7, ge=0, description="keep published rows")
    outbox_prune_interval_seconds: float = Field(
        default=300.0, gt=0, description="how often old published rows are deleted"
    )
    database_pool_size: int = Field(
        default=4,
        ge=1,
        le=100,
        description="`todo-operator relay`'s pool; in `run` the relay uses the operator's",
    )


class Publisher(Protocol):
    async def publish(self, *, topic: str, message: dapr.Message) -> dapr.Rejected | None: ...

    async def publish_bulk(self, *, topic: str, messages: Sequence[dapr.Message]) -> dapr.BulkOutcome: ...


@dataclass(kw_only=True)
class CycleResult:
    claimed: int = 0
    published: int = 0
    failed: int = 0
    dead_lettered: int = 0
    sidecar_error: str | None = None
    # Partition key -> its first row in this batch that is still unpublished: a batch claimed
    # ahead of this one must not publish a later row of that key.
    held_back: dict[str, int] = field(default_factory=dict)


@dataclass(kw_only=True)
class _Prepared:
    row: OutboxRow
    messages: list[tuple[str, dapr.Message]] = field(default_factory=list)  # (topic, message)
    span: trace.Span | None = None  # when the row carries a trace context


@dataclass(kw_only=True)
class _Tally:
    """Where each row of a batch being published stands (outbox ids)."""

    published: list[int] = field(default_factory=list)
    failures: list[tuple[OutboxRow, str]] = field(default_factory=list)  # (row, why) of its own
    untouched: list[int] = field(default_factory=list)  # to release, unattempted this time


def _not_behind(items: list[_Prepared], behind: Mapping[str, int] | None, tally: _Tally) -> list[_Prepared]:
    """The items not behind a row of the batch before that did not go through (those wait)."""
    if not behind:
        return items
    ready = []
    for item in items:
        if item.row.id > behind.get(item.row.partition_key, item.row.id):
            tally.untouched.append(item.row.id)
        else:
            ready.append(item)
    return ready


@dataclass(frozen=True, kw_only=True)
class _Batch:
    """Claimed rows, already turned into messages (so a batch claimed ahead is ready to go)."""

    lease: str  # the rows' claimed_by
    rows: list[OutboxRow]
    prepared: list[_Prepared]  # the valid rows, in id order
    invalid: list[tuple[int, str]]  # (outbox id, why): straight to the dead letters


def _publish_span(row: OutboxRow) -> trace.Span | None:
    """A producer span in the trace of the change the row records (rows without one get none)."""
    parent = tracing.context_from(row.traceparent)
    if parent is None:
        return None
    return tracing.tracer.start_span(
        f"publish {row.event_type}",
        context=parent,
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "dapr",
            "messaging.destination.name": row.topic,
            "cloudevents.event_id": row.event_id,
            "cloudevents.event_type": row.event_type,
        },
    )


def _end_spans(prepared: Sequence[_Prepared], *, published: set[int]) -> None:
    for item in prepared:
        if item.span is None:
            continue
        if item.row.id not in published:
            item.span.set_status(trace.StatusCode.ERROR, "not published in this attempt")
        item.span.end()


def _waves(items: Sequence[_Prepared]) -> list[list[_Prepared]]:
    """Wave *k* holds each partition key's *k*-th item (items in id order)."""
    waves: list[list[_Prepared]] = []
    seen: dict[str, int] = defaultdict(int)
    for item in items:
        position = seen[item.row.partition_key]
        seen[item.row.partition_key] += 1
        if position == len(waves):
            waves.append([])
        waves[position].append(item)
    return waves


def exponential(*, attempt: int, base: float, cap: float) -> float:
    """``base * 2**(attempt-1)``, capped: 1 -> base, 2 -> 2*base, ..."""
    return float(min(cap, base * 2 ** max(0, min(attempt - 1, 60))))


def relay_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Relay:
    def __init__(
        self,
        *,
        store: OutboxStore,
        publisher: Publisher,
        settings: RelaySettings,
        clock: Clock | None = None,
        name: str | None = None,
        metrics: RelayMetrics | None = None,
    ) -> None:
        # Counted in one place, the relay's metrics; a relay built without them (a test, a
        # benchmark) counts into a registry of its own, which it exposes as ``metrics``.
        self.metrics = metrics or RelayMetrics(CollectorRegistry())
        self._store = store
        self._publisher = publisher
        self._settings = settings
        self._clock = clock or SystemClock()
        self.name = name or relay_name()
        self._bulk = settings.relay_bulk
        self._batches = itertools.count(1)

    async def publish_batch(self) -> CycleResult:
        """One cycle on its own: claim a batch, then publish it (nothing is claimed ahead)."""
        return await self._publish(await self._claim())

    async def _claim(self, *, ahead_of: str | None = None) -> _Batch:
        settings = self._settings
        lease = f"{self.name}#{next(self._batches)}"
        rows = await self._store.claim(
            relay=lease,
            now=self._clock.now(),
            lease=timedelta(seconds=settings.relay_lease_seconds),
            limit=settings.relay_batch_size,
            ahead_of=ahead_of,
        )
        prepared: list[_Prepared] = []
        invalid: list[tuple[int, str]] = []
        for number, row in enumerate(rows, 1):
            if number % 100 == 0:
                # Let the batch being published go on (its response, its marking) meanwhile.
                await asyncio.sleep(0)
            try:
                prepared.append(self._prepare(row))
            except schemas.InvalidEvent as error:
                # It would fail the same way every time: straight to the dead letters.
                invalid.append((row.id, f"invalid event: {error}"))
        return _Batch(lease=lease, rows=rows, prepared=prepared, invalid=invalid)

    async def _publish(self, batch: _Batch, *, behind: Mapping[str, int] | None = None) -> CycleResult:
        """Publish wave by wave, then mark, count or release every row of the batch.

        ``behind``: the ``held_back`` of the batch published just before, when this one was
        claimed ahead of it.
        """
        result = CycleResult(claimed=len(batch.rows))
        if not batch.rows:
            return result
        tally = _Tally()
        try:
            await self._publish_waves(_not_behind(batch.prepared, behind, tally), tally, result)
        finally:
            # Whatever happened, every row ends published, failed (or dead) or released.
            dead = await self._settle(batch, tally, result)
        result.published = len(tally.published)
        settled = {*tally.published, *dead}
        for row in batch.rows:
            if row.id not in settled:
                result.held_back.setdefault(row.partition_key, row.id)  # rows come in id order
        return result

    async def _publish_waves(self, items: list[_Prepared], tally: _Tally, result: CycleResult) -> None:
        """Each wave holds at most one row per partition key; a key whose row failed waits."""
        blocked: set[str] = set()
        for wave in _waves(items):
            ready = [item for item in wave if item.row.partition_key not in blocked]
            tally.untouched.extend(item.row.id for item in wave if item.row.partition_key in blocked)
            if not ready:
                continue  # every user of this wave waits behind a failure: nothing to ask
            if result.sidecar_error is not None:
                tally.untouched.extend(item.row.id for item in ready)
                continue
            delivered, own_failures, sidecar_error = await self._publish_wave(ready)
            tally.published.extend(delivered)
            if sidecar_error is not None and not delivered and not own_failures:
                # Nothing went through: the sidecar or broker is down, not these events.
                result.sidecar_error = sidecar_error
                tally.untouched.extend(item.row.id for item in ready)
                continue
            failed_ids = {row.id for row, _ in own_failures}
            tally.failures.extend(own_failures)
            # Events of a wave that neither went through nor failed on their own wait too.
            for item in ready:
                if item.row.id not in failed_ids and item.row.id not in delivered:
                    tally.untouched.append(item.row.id)
                    blocked.add(item.row.partition_key)
            blocked.update(row.partition_key for row, _ in own_failures)

    async def _settle(self, batch: _Batch, tally: _Tally, result: CycleResult) -> set[int]:
        """Mark the published, count or dead-letter the failed, release the rest; the dead ids."""
        now = self._clock.now()
        _end_spans(batch.prepared, published=set(tally.published))
        try:
            await self._store.mark_published(ids=tally.published, now=now)
            dead = await self._settle_failures(
                tally.failures,
                invalid=batch.invalid,
                result=result,
                topics={row.id: row.topic for row in batch.rows},
            )
            await self._store.release(ids=tally.untouched, error=result.sidecar_error)
        except psycopg.Error:
            # The database failed, not this process: settle once more on a fresh connection.
            await self._recover(batch, published=tally.published, now=now)
            raise
        return dead

    def _prepare(self, row: OutboxRow) -> _Prepared:
        span = _publish_span(row)
        event = schemas.build(
            event_id=row.event_id,
            event_type=row.event_type,
            subject=row.subject,
            partition_key=row.partition_key,
            time=row.created_at,
            data=row.payload,
            # The consumer's span is a child of this publish, in the trace of the change.
            traceparent=tracing.traceparent_of(span) if span is not None else row.traceparent,
        )
        prepared = _Prepared(row=row, span=span)
        prepared.messages.append(
            (row.topic, dapr.Message(entry_id=event["id"], event=event, partition_key=row.partition_key))
        )
        update = schemas.task_update(event)
        if update is not None:
            prepared.messages.append(
                (
                    schemas.KINDS[schemas.TASK_UPDATE_TYPE].topic,
                    dapr.Message(entry_id=update["id"], event=update, partition_key=row.partition_key),
                )
            )
        return prepared

    async def _publish_wave(
        self, wave: Sequence[_Prepared]
    ) -> tuple[set[int], list[tuple[OutboxRow, str]], str | None]:
        """Publish one wave: (rows delivered, rows failed on their own, why the sidecar failed)."""
        by_topic: dict[str, list[dapr.Message]] = defaultdict(list)
        owner: dict[str, _Prepared] = {}
        for item in wave:
            for topic, message in item.messages:
                by_topic[topic].append(message)
                owner[message.entry_id] = item
        outcomes = await asyncio.gather(
            *(self._publish_topic(topic, messages) for topic, messages in by_topic.items())
        )
        # entry id -> error (None: delivered); a missing entry was never answered (sidecar error).
        answered: dict[str, str | None] = {}
        rejected: set[str] = set()
        sidecar_error: str | None = None
        for outcome in outcomes:
            if isinstance(outcome, str):
                sidecar_error = outcome
                continue
            entries, rejected_entries = outcome
            answered.update(entries)
            rejected.update(rejected_entries)
        any_delivered = any(error is None for error in answered.values())
        delivered: set[int] = set()
        own: list[tuple[OutboxRow, str]] = []
        for item in wave:
            errors = [answered.get(message.entry_id, "") for _, message in item.messages]
            if all(error is None for error in errors):
                delivered.add(item.row.id)
                continue
            reasons = [error for error in errors if error]
            is_rejected = any(message.entry_id in rejected for _, message in item.messages)
            # Only a failure next to a success (or a rejection) is this event's own.
            if reasons and (is_rejected or any_delivered):
                own.append((item.row, "; ".join(reasons)))
            elif reasons and sidecar_error is None:
                sidecar_error = reasons[0]
        if delivered or own:
            return delivered, own, sidecar_error
        return delivered, own, sidecar_error or "nothing was delivered"

    async def _publish_topic(
        self, topic: str, messages: Sequence[dapr.Message]
    ) -> tuple[dict[str, str | None], set[str]] | str:
        """(entry id -> error or None, rejected entry ids), or the sidecar's error as a string."""
        started = time.perf_counter()
        outcome = await self._publish_topic_once(topic, messages)
        measured = self.metrics
        measured.publish_duration.observe(time.perf_counter() - started)
        if isinstance(outcome, str):
            measured.publish_errors.labels(topic, "unavailable").inc(len(messages))
        else:
            entries, rejected = outcome
            delivered = sum(error is None for error in entries.values())
            measured.published.labels(topic).inc(delivered)
            if rejected:
                measured.publish_errors.labels(topic, "rejected").inc(len(rejected))
            if unavailable := len(entries) - delivered - len(rejected):
                measured.publish_errors.labels(topic, "unavailable").inc(unavailable)
        return outcome

    async def _publish_topic_once(
        self, topic: str, messages: Sequence[dapr.Message]
    ) -> tuple[dict[str, str | None], set[str]] | str:
        try:
            if self._bulk and len(messages) > 1:
                try:
                    outcome = await self._publisher.publish_bulk(topic=topic, messages=messages)
                except dapr.BulkUnsupported as error:
                    logger.warning("bulk publish unavailable (%s); publishing one by one from now on", error)
                    self._bulk = False
                else:
                    if outcome.rejected is not None:
                        ids = {message.entry_id for message in messages}
                        return dict.fromkeys(ids, outcome.rejected.error), ids
                    return {m.entry_id: outcome.failed.get(m.entry_id) for m in messages}, set()
            answers = await asyncio.gather(
                *(self._publish_one(topic, message) for message in messages), return_exceptions=True
            )
        except dapr.SidecarUnavailable as error:
            return str(error)
        entries: dict[str, str | None] = {}
        rejected: set[str] = set()
        sidecar_error: str | None = None
        for message, answer in zip(messages, answers, strict=True):
            if isinstance(answer, dapr.SidecarUnavailable):
                sidecar_error = str(answer)
                entries[message.entry_id] = sidecar_error
            elif isinstance(answer, BaseException):
                raise answer
            elif answer is None:
                entries[message.entry_id] = None
            else:
                entries[message.entry_id] = answer.error
                rejected.add(message.entry_id)
        if (
            sidecar_error is not None
            and not any(error is None for error in entries.values())
            and not rejected
        ):
            return sidecar_error
        return entries, rejected

    async def _publish_one(self, topic: str, message: dapr.Message) -> dapr.Rejected | None:
        return await self._publisher.publish(topic=topic, message=message)

    async def _settle_failures(
        self,
        failures: Sequence[tuple[OutboxRow, str]],
        *,
        invalid: Sequence[tuple[int, str]],
        result: CycleResult,
        topics: dict[int, str],
    ) -> set[int]:
        """Count each failure against its row; return the rows moved to the dead letters."""
        settings = self._settings
        now = self._clock.now()
        retry_later: list[Failure] = []
        dead = list(invalid)
        for row, error in failures:
            attempts = row.attempts + 1
            if attempts >= settings.relay_max_attempts:
                dead.append((row.id, f"after {attempts} attempts: {error}"))
            else:
                delay = exponential(
                    attempt=attempts, base=settings.relay_retry_seconds, cap=settings.relay_retry_cap_seconds
                )
                retry_later.append(
                    Failure(outbox_id=row.id, error=error, next_attempt_at=now + timedelta(seconds=delay))
                )
        await self._store.record_failures(failures=retry_later)
        await self._store.dead_letter(ids_and_errors=dead, now=now)
        for outbox_id, error in dead:
            logger.error("outbox row %s moved to the dead letters: %s", outbox_id, error)
            self.metrics.dead_lettered.labels(topics[outbox_id]).inc()
        result.failed = len(failures)
        result.dead_lettered = len(dead)
        return {outbox_id for outbox_id, _ in dead}

    def _outage_delay(self, outages: int) -> float:
        settings = self._settings
        return exponential(
            attempt=outages, base=settings.relay_backoff_seconds, cap=settings.relay_backoff_cap_seconds
        )

    async def prune(self) -> int:
        cutoff = self._clock.now() - timedelta(hours=self._settings.outbox_retention_hours)
        return await self._store.prune(published_before=cutoff)

    async def run(
        self, *, stop: asyncio.Event, sleep: Sleep | None = None, wakeups: asyncio.Event | None = None
    ) -> None:
        """Publish until ``stop`` is set; back off while the sidecar or the database is down.

        After a full batch the next one is claimed while this one is published (see the
        module docstring); after an error the batch claimed ahead is given back. With
        ``wakeups`` (set by a :class:`~todo_operator.store.wakeups.Listener`) an idle relay
        sleeps until told; without, it polls every ``relay_idle_seconds``.
        """
        wait = sleep or _sleep_until(stop)
        settings = self._settings
        outages = 0
        last_prune: datetime | None = None
        ahead: asyncio.Task[_Batch] | None = None
        behind: dict[str, int] = {}
        try:
            while not stop.is_set():
                if wakeups is not None:
                    # Before the claim: a row committed after this point rings again.
                    wakeups.clear()
                last_prune = await self._prune_if_due(last_prune)
                try:
                    if ahead is not None:
                        claiming, ahead = ahead, None
                        batch = await claiming
                    else:
                        batch = await self._claim()
                    if len(batch.rows) == settings.relay_batch_size:
                        ahead = asyncio.create_task(self._claim(ahead_of=batch.lease))
                    result = await self._publish(batch, behind=behind)
                except (psycopg.Error, OSError) as error:
                    await self._give_back(ahead)
                    ahead, behind = None, {}
                    outages += 1
                    delay = self._outage_delay(outages)
                    logger.warning("outbox relay: database unavailable (%s); retrying in %.1fs", error, delay)
                    await wait(delay)
                    continue
                behind = result.held_back
                if result.sidecar_error is not None:
                    await self._give_back(ahead)
                    ahead, behind = None, {}
                    outages += 1
                    delay = self._outage_delay(outages)
                    logger.warning(
                        "outbox relay: Dapr unavailable (%s); %d events wait; retrying in %.1fs",
                        result.sidecar_error,
                        result.claimed - result.published,
                        delay,
                    )
                    await wait(delay)
                    continue
                outages = 0
                await self._rest(
                    result, claiming_ahead=ahead is not None, wakeups=wakeups, stop=stop, wait=wait
                )
        finally:
            await self._give_back(ahead)

    async def _prune_if_due(self, last_prune: datetime | None) -> datetime | None:
        """Prune old published rows every ``outbox_prune_interval_seconds``; when it last did."""
        now = self._clock.now()
        since_prune = None if last_prune is None else (now - last_prune).total_seconds()
        if since_prune is not None and since_prune < self._settings.outbox_prune_interval_seconds:
            return last_prune
        with contextlib.suppress(psycopg.Error):
            pruned = await self.prune()
            if pruned:
                logger.info("pruned %d published outbox rows", pruned)
        return now

    async def _rest(
        self,
        result: CycleResult,
        *,
        claiming_ahead: bool,
        wakeups: asyncio.Event | None,
        stop: asyncio.Event,
        wait: Sleep,
    ) -> None:
        """Between cycles: polling, wait after any batch that was not full; woken, only when idle."""
        if wakeups is None:
            if not claiming_ahead:
                await wait(self._settings.relay_idle_seconds)
        elif result.claimed == 0:
            await self._wait_for_work(wakeups, stop=stop)

    async def _wait_for_work(self, wakeups: asyncio.Event, *, stop: asyncio.Event) -> None:
        """Nothing to claim: sleep until a notification, or until a lease or a backoff ends.

        Only an empty claim gets here, so a relay that published something claims once more
        first: the rows its batch held back (later rows of the same users) wake no one else.
        """
        now = self._clock.now()
        timeout = _LONGEST_IDLE_SECONDS
        with contextlib.suppress(psycopg.Error, OSError):
            until = await self._store.next_claimable_at(now=now)
            if until is not None:
                timeout = min(max((until - now).total_seconds(), 0.0), timeout)
        if not wakeups.is_set():
            await _first_of(wakeups, stop, seconds=timeout)

    async def _recover(self, batch: _Batch, *, published: Sequence[int], now: datetime) -> None:
        """After settling failed on the database (a dropped connection, a failover): try once more.

        Without this the batch's rows would stay leased for ``relay_lease_seconds``, and every later
        row of their users behind them, though this relay is alive. What went through is marked (so
        not sent twice), the rest given back. If the database is really gone this fails too, and the
        lease runs out as after a crash.
        """
        try:
            given_back = await self._store.recover(
                lease=batch.lease, ids=[row.id for row in batch.rows], published=published, now=now
            )
        except (psycopg.Error, OSError) as error:
            logger.warning("outbox relay: batch %s left to its lease (%s)", batch.lease, error)
            return
        logger.info(
            "outbox relay: batch %s settled after a database error (%d published, %d given back)",
            batch.lease,
            len(published),
            given_back,
        )

    async def _give_back(self, ahead: asyncio.Task[_Batch] | None) -> None:
        """Release the rows of a batch claimed ahead (left to their lease if that fails too)."""
        if ahead is None:
            return
        try:
            batch = await ahead
            _end_spans(batch.prepared, published=set())
            await self._store.release(ids=[row.id for row in batch.rows])
        except (psycopg.Error, OSError) as error:
            logger.warning("outbox relay: could not give back a batch claimed ahead (%s)", error)


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _sleep_until(stop: asyncio.Event) -> Sleep:
    async def sleep(seconds: float) -> None:
        # Wake early when asked to stop.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    return sleep


def open_pool(settings: RelaySettings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    return pools.open_pool(settings.database_url, max_size=settings.database_pool_size)


async def run_relay(
    settings: RelaySettings,
    *,
    stop: asyncio.Event,
    clock: Clock | None = None,
    pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None,
    metrics: RelayMetrics | None = None,
) -> None:
    """Run one relay until ``stop`` is set (own pool unless one is given; own HTTP session)."""
    own_pool = pool is None
    if pool is None:
        pool = open_pool(settings)
        await pool.open(wait=True, timeout=30)
    try:
        # One connection per concurrent request at most; loopback to the sidecar.
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            publisher = dapr.DaprPublisher(
                session=session,
                endpoint=settings.dapr_http_endpoint,
                pubsub=settings.pubsub_name,
                timeout=settings.relay_publish_timeout_seconds,
            )
            relay = Relay(
                store=OutboxStore(pool), publisher=publisher, settings=settings, clock=clock, metrics=metrics
            )
            logger.info(
                "outbox relay %s publishing to %s (pub/sub %r), %s",
                relay.name,
                settings.dapr_http_endpoint,
                settings.pubsub_name,
                "woken by LISTEN/NOTIFY" if settings.listen_notify else "polling",
            )
            if not settings.listen_notify:
                await relay.run(stop=stop)
                return
            wakeups = asyncio.Event()
            listener = wakeup_channels.Listener(settings.database_url, {wakeup_channels.OUTBOX: wakeups.set})
            listening = asyncio.create_task(listener.run(), name="outbox-relay-listener")
            try:
                await relay.run(stop=stop, wakeups=wakeups)
            finally:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening
    finally:
        if own_pool:
            await pool.close()
