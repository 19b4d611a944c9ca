"""The emulator's named faults (``emulator.faults``): each does what it says, as often as it says.

The fault-tolerance suite (``tests/faults``) relies on these to break the API
server on purpose; here each is checked over plain HTTP, so a fault that
silently stopped firing cannot make a fault test pass for the wrong reason.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

import kube_emulator as apiserver
from kube_emulator import faults
from tests.packages.kube_emulator.conftest import WIDGETS, Api, widget


async def watch(api: Api, path: str, **params: str) -> list[dict[str, Any]]:
    """Collect a watch stream until the server ends it (always pass timeoutSeconds)."""
    async with api.session.get(api.server.url + path, params={"watch": "true", **params}) as response:
        return [json.loads(line) for line in (await response.read()).splitlines() if line.strip()]


async def open_watch(api: Api, path: str, **params: str) -> asyncio.Task[list[dict[str, Any]]]:
    """Start a watch in the background and return once the server is serving it."""
    before = api.server.emulator.faults.open_watches
    task = asyncio.create_task(watch(api, path, **params))
    for _ in range(200):
        if api.server.emulator.faults.open_watches > before:
            return task
        await asyncio.sleep(0.01)
    raise AssertionError("the watch never opened")


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["type"], event["object"]["metadata"]["name"]) for event in events]


@pytest.mark.parametrize(
    ("method", "name", "is_watch", "verb"),
    [
        ("GET", None, False, "list"),
        ("GET", None, True, "watch"),
        ("GET", "w1", False, "get"),
        ("GET", "w1", True, "watch"),
        ("POST", None, False, "create"),
        ("PUT", "w1", False, "update"),
        ("PATCH", "w1", False, "patch"),
        ("DELETE", "w1", False, "delete"),
        ("DELETE", None, False, "deletecollection"),
        ("OPTIONS", None, False, None),
    ],
)
def test_requests_are_named_by_their_kubernetes_verb(
    method: str, name: str | None, is_watch: bool, verb: str | None
) -> None:
    assert faults.verb_of(method, name=name, watch=is_watch) == verb


async def test_fail_next_answers_the_next_n_matching_requests_then_serves(
    server: apiserver.RunningServer, api: Api
) -> None:
    fault = server.emulator.faults.fail_next(2, status=503, verb="create", plural="widgets")
    assert (await api.get(WIDGETS))[0] == 200  # another verb: served
    first = await api.post(WIDGETS, widget("a"))
    second = await api.post(WIDGETS, widget("a"))
    third = await api.post(WIDGETS, widget("a"))
    assert [first[0], second[0], third[0]] == [503, 503, 201]
    assert first[1]["kind"] == "Status"
    assert first[1]["reason"] == "ServiceUnavailable"
    assert (fault.fired, fault.remaining) == (2, 0)


async def test_conflict_on_next_hits_only_the_named_subresource(
    server: apiserver.RunningServer, api: Api
) -> None:
    await api.post(WIDGETS, widget("a"))
    fault = server.emulator.faults.conflict_on_next(1, verb="patch", plural="widgets", subresource="status")
    assert (await api.patch(f"{WIDGETS}/a", {"spec": {"title": "T"}}))[0] == 200  # the resource itself
    status, body = await api.patch(f"{WIDGETS}/a/status", {"status": {"phase": "Ready"}})
    assert status == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert (await api.patch(f"{WIDGETS}/a/status", {"status": {"phase": "Ready"}}))[0] == 200
    assert fault.fired == 1


async def test_dropped_watch_events_are_not_sent_but_stay_in_the_log(
    server: apiserver.RunningServer, api: Api
) -> None:
    _, first = await api.post(WIDGETS, widget("a"))
    fault = server.emulator.faults.drop_watch_events(1, plural="widgets")
    live = await open_watch(
        api, WIDGETS, timeoutSeconds="0.3", resourceVersion=first["metadata"]["resourceVersion"]
    )
    await api.post(WIDGETS, widget("b"))
    await api.post(WIDGETS, widget("c"))
    assert names(await live) == [("ADDED", "c")]
    assert fault.fired == 1
    resumed = await watch(
        api, WIDGETS, timeoutSeconds="0.2", resourceVersion=first["metadata"]["resourceVersion"]
    )
    assert names(resumed) == [("ADDED", "b"), ("ADDED", "c")]


async def test_duplicated_watch_events_are_sent_twice(server: apiserver.RunningServer, api: Api) -> None:
    fault = server.emulator.faults.duplicate_watch_events(1, plural="widgets")
    live = await open_watch(api, WIDGETS, timeoutSeconds="0.3")
    await api.post(WIDGETS, widget("a"))
    await api.post(WIDGETS, widget("b"))
    events = await live
    assert names(events) == [("ADDED", "a"), ("ADDED", "a"), ("ADDED", "b")]
    assert events[0] == events[1]
    assert fault.fired == 1


async def test_stale_replays_send_the_previous_state_after_the_new_one(
    server: apiserver.RunningServer, api: Api
) -> None:
    _, created = await api.post(WIDGETS, widget("a", title="old"))
    fault = server.emulator.faults.replay_stale_watch_events(1, plural="widgets")
    live = await open_watch(
        api, WIDGETS, timeoutSeconds="0.3", resourceVersion=created["metadata"]["resourceVersion"]
    )
    await api.post(WIDGETS, widget("b"))  # ADDED: nothing older to replay
    await api.patch(f"{WIDGETS}/a", {"spec": {"title": "new"}})
    events = await live
    assert names(events) == [("ADDED", "b"), ("MODIFIED", "a"), ("MODIFIED", "a")]
    newer, older = events[1]["object"], events[2]["object"]
    assert (newer["spec"]["title"], older["spec"]["title"]) == ("new", "old")
    assert int(older["metadata"]["resourceVersion"]) < int(newer["metadata"]["resourceVersion"])
    assert fault.fired == 1


async def test_expired_watches_end_with_410_gone_and_resuming_from_before_is_refused(
    server: apiserver.RunningServer, api: Api
) -> None:
    _, created = await api.post(WIDGETS, widget("a"))
    before = created["metadata"]["resourceVersion"]
    live = await open_watch(api, WIDGETS, timeoutSeconds="5", resourceVersion=before)
    _, latest = await api.post(WIDGETS, widget("b"))
    assert server.emulator.faults.expire_watches() == 1
    events = await asyncio.wait_for(live, timeout=5)
    assert [event["type"] for event in events] == ["ADDED", "ERROR"]
    assert (events[-1]["object"]["code"], events[-1]["object"]["reason"]) == (410, "Expired")

    resumed = await watch(api, WIDGETS, timeoutSeconds="0.2", resourceVersion=before)
    assert [(event["type"], event["object"]["code"]) for event in resumed] == [("ERROR", 410)]
    assert server.emulator.faults.gone_answered == 2
    # What a client does next works: list again, then watch from the list's version.
    _, listed = await api.get(WIDGETS)
    assert listed["metadata"]["resourceVersion"] == latest["metadata"]["resourceVersion"]
    assert (
        await watch(api, WIDGETS, timeoutSeconds="0.2", resourceVersion=listed["metadata"]["resourceVersion"])
        == []
    )


async def test_an_outage_refuses_everything_and_ends_open_watches_until_it_ends(
    server: apiserver.RunningServer, api: Api
) -> None:
    live = await open_watch(api, WIDGETS, timeoutSeconds="5")
    outage = server.emulator.faults.begin_outage(status=503)
    assert await asyncio.wait_for(live, timeout=5) == []  # ended, as a restarting server ends them
    assert (await api.get(WIDGETS))[0] == 503
    assert (await api.post(WIDGETS, widget("a")))[0] == 503
    assert (await api.get("/version"))[0] == 503
    assert outage.refused == 3
    server.emulator.faults.end_outage()
    assert (await api.post(WIDGETS, widget("a")))[0] == 201
    assert outage.refused == 3


async def test_an_outage_without_a_status_drops_connections(
    server: apiserver.RunningServer, api: Api
) -> None:
    live = await open_watch(api, WIDGETS, timeoutSeconds="5")
    outage = server.emulator.faults.begin_outage(status=None)
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(live, timeout=5)  # cut mid-stream
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.get(WIDGETS)
    assert outage.refused >= 1  # aiohttp tries a GET once more on a fresh connection
    server.emulator.faults.end_outage()
    assert (await api.get(WIDGETS))[0] == 200


async def test_watch_faults_compose_in_the_order_armed(server: apiserver.RunningServer, api: Api) -> None:
    _, created = await api.post(WIDGETS, widget("a", title="old"))
    server.emulator.faults.duplicate_watch_events(1, plural="widgets")
    server.emulator.faults.replay_stale_watch_events(1, plural="widgets")
    live = await open_watch(
        api, WIDGETS, timeoutSeconds="0.3", resourceVersion=created["metadata"]["resourceVersion"]
    )
    await api.patch(f"{WIDGETS}/a", {"spec": {"title": "new"}})
    titles = [event["object"]["spec"]["title"] for event in await live]
    assert titles == ["new", "new", "old"]


async def test_heal_disarms_every_fault_and_keeps_the_counts(
    server: apiserver.RunningServer, api: Api
) -> None:
    faults_ = server.emulator.faults
    failing = faults_.fail_next(5, status=500, verb="create")
    dropping = faults_.drop_watch_events(5, plural="widgets")
    assert (await api.post(WIDGETS, widget("a")))[0] == 500
    outage = faults_.begin_outage(status=503)
    assert (await api.get(WIDGETS))[0] == 503
    faults_.heal()
    assert (await api.post(WIDGETS, widget("a")))[0] == 201
    assert (await api.get(WIDGETS))[0] == 200
    assert (failing.fired, failing.remaining, dropping.remaining) == (1, 0, 0)
    assert (outage.active, outage.refused) == (False, 1)


async def test_delayed_watch_events_arrive_after_later_events_of_other_resources(
    server: apiserver.RunningServer, api: Api
) -> None:
    """A lagging stream reorders events across resources (each stream keeps its own order)."""
    arrivals: list[str] = []

    _, listed = await api.get("/api/v1/namespaces")
    now = listed["metadata"]["resourceVersion"]  # watch from here: no replay of what exists

    async def follow(path: str) -> None:
        params = {"watch": "true", "timeoutSeconds": "1", "resourceVersion": now}
        async with api.session.get(api.server.url + path, params=params) as response:
            async for line in response.content:
                if line.strip():
                    arrivals.append(json.loads(line)["object"]["metadata"]["name"])

    fault = server.emulator.faults.delay_watch_events(1, seconds=0.3, plural="widgets")
    followers = [asyncio.create_task(follow(WIDGETS)), asyncio.create_task(follow("/api/v1/namespaces"))]
    for _ in range(200):
        if server.emulator.faults.open_watches == 2:
            break
        await asyncio.sleep(0.01)
    await api.post(WIDGETS, widget("first"))
    await api.post("/api/v1/namespaces", {"metadata": {"name": "second"}})
    await api.post(WIDGETS, widget("third"))
    await asyncio.gather(*followers)
    assert arrivals == ["second", "first", "third"]
    assert fault.fired == 1


async def test_a_held_write_meets_the_real_409_of_a_write_that_overtook_it(
    server: apiserver.RunningServer, api: Api
) -> None:
    _, created = await api.post(WIDGETS, widget("a"))
    version = created["metadata"]["resourceVersion"]
    hold = server.emulator.faults.hold_next(verb="patch", plural="widgets")
    slow = asyncio.create_task(
        api.patch(f"{WIDGETS}/a", {"metadata": {"resourceVersion": version}, "spec": {"title": "slow"}})
    )
    for _ in range(200):
        if hold.held:
            break
        await asyncio.sleep(0.01)
    assert (await api.patch(f"{WIDGETS}/a", {"spec": {"title": "fast"}}))[0] == 200  # not held: once only
    hold.release()
    status, body = await asyncio.wait_for(slow, timeout=5)
    assert (status, body["reason"]) == (409, "Conflict")
    assert (await api.get(f"{WIDGETS}/a"))[1]["spec"]["title"] == "fast"
