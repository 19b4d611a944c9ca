"""The live hub: an owner's updates, replayed from a position, and a resync whenever that cannot be exact."""

from __future__ import annotations

import asyncio

from todo_operator.api.web.live import RESYNC, LiveEvent, LiveHub


async def take(hub: LiveHub, owner: str, *, since: str | None, count: int) -> list[LiveEvent]:
    taken: list[LiveEvent] = []
    stream = hub.follow(owner, since=since)
    async with asyncio.timeout(2):
        async for event in stream:
            taken.append(event)
            if len(taken) == count:
                break
    await stream.aclose()
    return taken


async def test_an_update_after_the_render_is_replayed_on_connect() -> None:
    hub = LiveHub()
    rendered = hub.position()
    hub.publish("alice@example.com", {"change": "updated", "subject": "tasks/a"})
    hub.publish("bob@example.com", {"change": "updated", "subject": "tasks/b"})
    [event] = await take(hub, "alice@example.com", since=rendered, count=1)
    assert (event.kind, event.data["subject"]) == ("update", "tasks/a")


async def test_updates_reach_only_their_owners_open_pages() -> None:
    hub = LiveHub()
    alice = asyncio.create_task(take(hub, "alice@example.com", since=None, count=2))
    await asyncio.sleep(0)  # alice's page connects
    for subject in ("tasks/1", "tasks/2"):
        hub.publish("bob@example.com", {"subject": f"bob-{subject}"})
        hub.publish("alice@example.com", {"subject": subject})
    assert [event.data["subject"] for event in await alice] == ["tasks/1", "tasks/2"]


async def test_a_reconnect_resumes_after_the_last_event_it_saw() -> None:
    hub = LiveHub()
    for number in range(3):
        hub.publish("alice@example.com", {"n": number})
    first, second, _ = await take(
        hub, "alice@example.com", since=f"{hub.position().split('-')[0]}-0", count=3
    )
    resumed = await take(hub, "alice@example.com", since=first.id, count=2)
    assert [event.data["n"] for event in resumed] == [1, 2]
    assert resumed[0].id == second.id


async def test_a_position_it_cannot_replay_exactly_is_a_resync() -> None:
    hub = LiveHub(window=2)
    start = hub.position()
    for number in range(3):
        hub.publish("alice@example.com", {"n": number})
    for since in (start, "another-replica-7", "garbage", f"{hub.position().split('-')[0]}-99"):
        [event] = await take(hub, "alice@example.com", since=since, count=1)
        assert event.kind == RESYNC, since


async def test_a_page_too_slow_to_read_is_told_to_resync_not_waited_for() -> None:
    hub = LiveHub()
    stream = hub.follow("alice@example.com", since=None)
    reading = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # the page is connected, and reads nothing more for now
    for number in range(1000):
        hub.publish("alice@example.com", {"n": number})  # delivery never waits for a page
    events = [await reading]
    async with asyncio.timeout(2):
        while events[-1].data.get("n") != 999:
            events.append(await anext(stream))
    await stream.aclose()
    kinds = [event.kind for event in events]
    assert RESYNC in kinds
    assert len(events) < 1000  # what it missed was dropped, not queued without bound
    after = [event.data["n"] for event in events[len(kinds) - kinds[::-1].index(RESYNC) :]]
    assert after == list(range(after[0], 1000))  # then every later update, in order
