"""The Dapr double as Kafka for a consumer group (dapr_partitions' contract).

Small aiohttp apps are the replicas; events reach the double over HTTP as the
relay publishes them, with ``metadata.partitionKey``. Checked: keys pick
partitions as sarama's hash partitioner does (FNV-1a's published test
vectors), the range assignor, order per partition, and what rebalances do.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.packages.todo_devstack import test_dapr_delivery
from tests.packages.todo_devstack.test_dapr_delivery import FAST, ORDERS, Subscriber, cloud_event, serving
from todo_devstack.dapr import App, DaprDouble
from todo_devstack.dapr_partitions import fnv1a_32, partition_for, range_assignment

session = test_dapr_delivery.session  # the fixture, offered to this module


@pytest.mark.parametrize(
    ("data", "expected"),
    # From the FNV reference test suite (www.isthe.com/chongo/src/fnv/test_fnv.c, FNV-1a 32-bit).
    [(b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968)],
)
def test_keys_hash_as_fnv_1a(data: bytes, expected: int) -> None:
    assert fnv1a_32(data) == expected


def test_a_key_always_picks_the_same_partition_and_keys_spread() -> None:
    keys = [f"user-{n}@example.com" for n in range(1200)]
    partitions = [partition_for(key, 12) for key in keys]
    assert partitions == [partition_for(key, 12) for key in keys]
    assert all(70 <= count <= 130 for count in collections.Counter(partitions).values())


def test_the_range_assignor_gives_contiguous_ranges_the_first_members_one_more() -> None:
    owners = range_assignment(["c", "a", "b", "d", "e"], 12)
    by_member = collections.defaultdict(list)
    for partition, member in sorted(owners.items()):
        by_member[member].append(partition)
    assert dict(by_member) == {"a": [0, 1, 2], "b": [3, 4, 5], "c": [6, 7], "d": [8, 9], "e": [10, 11]}
    assert range_assignment([], 12) == {}


@contextlib.asynccontextmanager
async def group_of(count: int, *, partitions: int = 6) -> AsyncIterator[tuple[DaprDouble, list[Subscriber]]]:
    subscribers = [Subscriber(subscriptions=[ORDERS]) for _ in range(count)]
    async with contextlib.AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serving(s)) for s in subscribers]
        double = await stack.enter_async_context(DaprDouble(partitions=partitions, retry=FAST))
        assert double.group is not None
        for index, url in enumerate(urls):
            await double.group.join(f"replica-{index}", App(url=url))
        yield double, subscribers


async def publish(
    session: aiohttp.ClientSession, double: DaprDouble, event: dict[str, Any], key: str
) -> None:
    async with session.post(
        f"{double.url}/v1.0/publish/pubsub/orders",
        params={"metadata.partitionKey": key},
        data=json.dumps(event),
        headers={"Content-Type": "application/cloudevents+json"},
    ) as response:
        assert response.status == 204


async def settled(double: DaprDouble) -> None:
    assert double.group is not None
    async with asyncio.timeout(20):
        await double.group.idle()


def order_kept(subscribers: list[Subscriber], sent: dict[str, list[str]]) -> None:
    """Each key's events were handed over in the order published (a repeat of the last only)."""
    received: dict[str, list[str]] = collections.defaultdict(list)
    for subscriber in subscribers:
        for posted in subscriber.posted:
            received[posted.event["data"]["key"]].append(posted.event["id"])
    for key, ids in sent.items():
        seen: list[str] = []
        for event_id in received[key]:
            if not seen or seen[-1] != event_id:
                seen.append(event_id)
        assert seen == ids, key


async def test_each_partition_goes_to_one_replica_in_order(session: aiohttp.ClientSession) -> None:
    async with group_of(3) as (double, subscribers):
        sent: dict[str, list[str]] = collections.defaultdict(list)
        for n in range(120):
            key = f"user-{n % 10}"
            sent[key].append(f"e{n}")
            await publish(session, double, cloud_event(f"e{n}", data={"key": key}), key)
        await settled(double)

        order_kept(subscribers, sent)
        assert sum(len(s.posted) for s in subscribers) == 120  # no rebalance: each once
        # One replica per key: the partition's owner.
        owners = {
            posted.event["data"]["key"]: index for index, s in enumerate(subscribers) for posted in s.posted
        }
        assert len(owners) == 10
        assert double.group is not None
        assert len(set(double.group.owners().values())) == 3


async def test_rebalances_mid_stream_lose_nothing_and_keep_the_order(session: aiohttp.ClientSession) -> None:
    async with group_of(3) as (double, subscribers):
        assert double.group is not None
        late = Subscriber(subscriptions=[ORDERS])
        async with serving(late) as late_url:
            sent: dict[str, list[str]] = collections.defaultdict(list)
            for n in range(300):
                key = f"user-{n % 12}"
                sent[key].append(f"e{n}")
                await publish(session, double, cloud_event(f"e{n}", data={"key": key}), key)
                if n == 80:
                    await double.group.leave("replica-0")  # a clean stop
                if n == 150:
                    await double.group.join("replica-3", App(url=late_url))  # scaled up
                if n == 220:
                    await double.group.crash("replica-1")  # died: its in-flight messages go again
            await settled(double)

            everyone = [*subscribers, late]
            order_kept(everyone, sent)
            delivered = collections.Counter(p.event["id"] for s in everyone for p in s.posted)
            assert set(delivered) == {f"e{n}" for n in range(300)}
            assert double.group.rebalances == 3 + 3
            assert set(double.group.owners().values()) == {"replica-2", "replica-3"}


async def test_a_message_is_retried_before_the_next_of_its_partition(session: aiohttp.ClientSession) -> None:
    async with group_of(1, partitions=1) as (double, (subscriber,)):
        subscriber.answers["e0"] = [(500, None), (200, {"status": "RETRY"}), (200, None)]
        for n in range(3):
            await publish(session, double, cloud_event(f"e{n}", data={"key": "k"}), "k")
        await settled(double)

        assert [p.event["id"] for p in subscriber.posted] == ["e0", "e0", "e0", "e1", "e2"]
