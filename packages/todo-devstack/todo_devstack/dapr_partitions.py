"""The Dapr double's Kafka side: one consumer group of many app replicas, partitions and rebalances.

``dapr_delivery`` hands every event to one app at once. With Kafka behind
Dapr the replicas of one app id form a consumer group that shares a topic's
partitions; this module plays that, for the tests of scaled-out consumers.
The contract, as docs.dapr.io ("Apache Kafka" pub/sub component) and Kafka
state it, and as implemented here:

- *Keys pick partitions.* A publish's ``metadata.partitionKey`` is the Kafka
  message key; the producer hashes it to a partition (Dapr's Kafka component
  uses sarama's default hash partitioner: FNV-1a, 32 bits, modulo the
  partition count). No key: round robin.
- *A consumer group per app id* (the component's default ``consumerGroup``):
  every replica is a member, and each partition is owned by one member at a
  time (Kafka's range assignor: members sorted by id, partitions in
  contiguous ranges).
- *In order per partition.* Dapr's component hands a partition's messages to
  the app one at a time, in offset order, and marks an offset once the app
  answered (``SUCCESS``, ``DROP``, or dead-lettered after the Resiliency
  retries, as ``dapr_delivery`` reads answers). A retried message is retried
  before the next one.
- *Rebalances.* A member joining or leaving moves partitions between members
  (only those whose owner changes, as the cooperative-sticky protocol does);
  a partition is revoked after its in-flight message was answered and
  marked. A member that died (``crash``: what Kafka learns when its session
  times out) gives its partitions up at once: its unmarked in-flight message
  goes to the next owner again (at least once).

Not Kafka: no broker process, no retention limit, what is kept is lost when the
double stops, one group only (the app id under test).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from todo_devstack.dapr_delivery import (
    App,
    RetryPolicy,
    Subscription,
    attempt,
    envelope,
    parse_subscriptions,
    read_subscriptions,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str, int]  # (pubsub, topic, partition)


def fnv1a_32(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def partition_for(key: str, partitions: int) -> int:
    """sarama's hash partitioner: FNV-1a of the key, as a signed 32-bit number, its absolute value."""
    hashed = fnv1a_32(key.encode())
    signed = hashed - (1 << 32) if hashed & 0x80000000 else hashed
    return abs(signed) % partitions


def range_assignment(members: list[str], partitions: int) -> dict[int, str]:
    """Kafka's range assignor for one topic: contiguous ranges, the first members one more."""
    if not members:
        return {}
    ordered = sorted(members)
    share, extra = divmod(partitions, len(ordered))
    owners: dict[int, str] = {}
    start = 0
    for index, member in enumerate(ordered):
        count = share + (1 if index < extra else 0)
        owners.update(dict.fromkeys(range(start, start + count), member))
        start += count
    return owners


@dataclass(frozen=True, kw_only=True)
class Handled:
    """One message handed to a member, and what became of it."""

    member: str
    topic: str
    partition: int
    offset: int
    event_id: str | None
    outcome: str  # delivered | dropped | dead-lettered | abandoned (revoked or died mid-delivery)


@dataclass
class _Member:
    app: App
    session: aiohttp.ClientSession
    headers: dict[str, str] = field(default_factory=dict)


class ConsumerGroup:
    """The replicas of one app id consuming the double's topics as a Kafka consumer group."""

    def __init__(
        self,
        *,
        partitions: int = 12,
        pubsubs: set[str],
        retry: RetryPolicy,
        dead_letter: Callable[[str, str, Mapping[str, Any]], None],
    ) -> None:
        self.partitions = partitions
        self.retry = retry
        self.handled: list[Handled] = []
        self.rebalances = 0
        self._pubsubs = pubsubs
        self._dead_letter = dead_letter
        self._logs: dict[tuple[str, str], list[list[Mapping[str, Any]]]] = {}
        self._marked: collections.Counter[Key] = collections.Counter()
        self._members: dict[str, _Member] = {}
        self._owners: dict[Key, str] = {}
        self._loops: dict[Key, asyncio.Task[None]] = {}
        self._revoking: set[Key] = set()
        self._wake: dict[Key, asyncio.Event] = collections.defaultdict(asyncio.Event)
        self._round_robin = itertools.count()
        self._subscriptions: list[Subscription] | None = None
        self._changed = asyncio.Condition()

    # The producer side.

    def accept(self, pubsub: str, topic: str, event: Mapping[str, Any], *, key: str | None) -> None:
        partitions = self._logs.setdefault((pubsub, topic), [[] for _ in range(self.partitions)])
        partition = partition_for(key, self.partitions) if key else next(self._round_robin) % self.partitions
        partitions[partition].append(event)
        self._wake[(pubsub, topic, partition)].set()

    # Membership.

    async def join(self, name: str, app: App) -> None:
        """A replica starts (its sidecar joins the group): partitions move to it."""
        headers = {"dapr-api-token": app.token} if app.token is not None else {}
        session = aiohttp.ClientSession(base_url=app.url.rstrip("/") + "/")
        self._members[name] = _Member(app=app, session=session, headers=headers)
        if self._subscriptions is None:
            document = await read_subscriptions(session, headers=headers)
            self._subscriptions = parse_subscriptions(document, pubsubs=self._pubsubs)
        await self._rebalance()

    async def leave(self, name: str) -> None:
        """A replica stops cleanly: its partitions are revoked once their messages in flight are marked."""
        member = self._members.pop(name)
        await self._rebalance()
        await member.session.close()

    async def crash(self, name: str) -> None:
        """A replica died: its partitions go at once, their in-flight messages unmarked."""
        member = self._members.pop(name)
        gone = [key for key, owner in self._owners.items() if owner == name]
        loops = [self._loops.pop(key) for key in gone]
        for key, loop in zip(gone, loops, strict=True):
            loop.cancel()
            del self._owners[key]
        await asyncio.gather(*loops, return_exceptions=True)
        await member.session.close()
        await self._rebalance()

    async def stop(self) -> None:
        loops = list(self._loops.values())
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        self._loops.clear()
        for member in self._members.values():
            await member.session.close()
        self._members.clear()

    def lag(self) -> int:
        """Messages not marked yet, over every subscribed partition."""
        return sum(
            len(log) - self._marked[(pubsub, topic, partition)]
            for (pubsub, topic), logs in self._logs.items()
            if self._subscription(pubsub, topic) is not None
            for partition, log in enumerate(logs)
        )

    async def idle(self) -> None:
        """Until every message of a subscribed topic is marked (wrap it in a timeout)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.lag() == 0)

    def owners(self) -> dict[Key, str]:
        return dict(self._owners)

    # Rebalancing and consuming.

    def _subscription(self, pubsub: str, topic: str) -> Subscription | None:
        for subscription in self._subscriptions or ():
            if (subscription.pubsub, subscription.topic) == (pubsub, topic):
                return subscription
        return None

    async def _rebalance(self) -> None:
        self.rebalances += 1
        wanted = range_assignment(list(self._members), self.partitions)
        keys = [
            (s.pubsub, s.topic, partition)
            for s in self._subscriptions or ()
            for partition in range(self.partitions)
        ]
        moving = [key for key in keys if self._owners.get(key) != wanted.get(key[2])]
        # Revoked first, each after its message in flight is answered; then assigned.
        await asyncio.gather(*(self._revoke(key) for key in moving if key in self._loops))
        for key in moving:
            owner = wanted.get(key[2])
            if owner is not None:
                self._owners[key] = owner
                self._loops[key] = asyncio.create_task(self._consume(key, owner), name=f"partition {key}")

    async def _revoke(self, key: Key) -> None:
        self._revoking.add(key)
        self._wake[key].set()
        loop = self._loops.pop(key)
        await asyncio.gather(loop, return_exceptions=True)
        self._revoking.discard(key)
        self._owners.pop(key, None)

    async def _consume(self, key: Key, owner: str) -> None:
        pubsub, topic, partition = key
        subscription = self._subscription(pubsub, topic)
        assert subscription is not None
        while key not in self._revoking:
            log = self._logs.get((pubsub, topic), [[]] * self.partitions)[partition]
            offset = self._marked[key]
            if offset >= len(log):
                self._wake[key].clear()
                await self._wake[key].wait()
                continue
            event = envelope(log[offset], pubsub=pubsub, topic=topic)
            outcome = await self._deliver(owner, subscription, event, key)
            self.handled.append(
                Handled(
                    member=owner,
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    event_id=str(event.get("id")),
                    outcome=outcome,
                )
            )
            if outcome == "abandoned":
                return
            self._marked[key] = offset + 1
            async with self._changed:
                self._changed.notify_all()

    async def _deliver(
        self, owner: str, subscription: Subscription, event: Mapping[str, Any], key: Key
    ) -> str:
        member = self._members[owner]
        body = orjson.dumps(event)
        answers: list[str] = []
        for retry in range(self.retry.max_retries + 1):
            if retry:
                await asyncio.sleep(self.retry.interval(retry - 1))
                if key in self._revoking:
                    return "abandoned"  # the next owner tries it again
            answer, said = await attempt(
                member.session, subscription, body, headers=member.headers, seconds=self.retry.timeout
            )
            answers.append(said)
            if answer == "SUCCESS":
                return "delivered"
            if answer == "DROP":
                logger.warning("event %s of %s dropped (%s)", event.get("id"), subscription.topic, said)
                return "dropped"
        if subscription.dead_letter_topic is None:
            logger.error("event %s of %s given up after %s", event.get("id"), subscription.topic, answers)
            return "dropped"
        self._dead_letter(subscription.pubsub, subscription.dead_letter_topic, event)
        return "dead-lettered"
