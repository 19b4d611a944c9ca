"""The schedule engine: compiled once per spec, refusals not kept, the caller's context, a share per user."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from todo_operator.domain import recurrence
from todo_operator.schedule_engine import EngineBusy, ScheduleEngine

DAILY = recurrence.ScheduleSpec(every="daily", start=datetime(2027, 3, 1, 9), time_zone="Europe/Berlin")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


@pytest.fixture
def engine() -> Iterator[ScheduleEngine]:
    engine = ScheduleEngine(recurrence.Limits(min_spacing=timedelta(minutes=5)), threads=1, cache_size=2)
    yield engine
    engine.close()


async def test_a_spec_is_compiled_once_and_shared(engine: ScheduleEngine) -> None:
    first = await engine.compile(DAILY)
    again = await engine.compile(recurrence.ScheduleSpec(**vars(DAILY)))  # equal, not the same object
    assert again is first
    assert (engine.cache_info().hits, engine.cache_info().misses) == (1, 1)
    assert first.next_after(datetime.fromisoformat("2027-03-01T09:00:00+01:00")) == datetime.fromisoformat(
        "2027-03-02T09:00:00+01:00"
    )


async def test_the_engine_limits_apply_and_a_refusal_is_not_kept(engine: ScheduleEngine) -> None:
    close = recurrence.ScheduleSpec(rrule="FREQ=MINUTELY;INTERVAL=2", start=datetime(2027, 3, 1, 9))
    for _ in range(2):
        with pytest.raises(recurrence.ScheduleError, match="apart"):
            await engine.compile(close)
    assert engine.cache_info().currsize == 0
    assert engine.limits.min_spacing == timedelta(minutes=5)


async def test_work_runs_in_the_engine_thread_with_the_callers_context(engine: ScheduleEngine) -> None:
    request_id.set("req-42")
    seen = await engine.run(lambda: (threading.current_thread().name, request_id.get()))
    assert seen[0].startswith("schedule-engine")
    assert seen[0] != threading.current_thread().name
    assert seen[1] == "req-42"


# -- who may queue work: jobs per owner (an API user) and in all --------------------------------

GATE_TIMEOUT = 30.0


class Held:
    """Work that waits in its engine thread until released: the order of events is certain."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.entered = threading.Event()
        self.released = threading.Event()

    def __call__(self) -> str:
        self.entered.set()
        self.released.wait(GATE_TIMEOUT)
        return self.answer

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, GATE_TIMEOUT), "the work never started"


@pytest.fixture
def shared_engine() -> Iterator[ScheduleEngine]:
    """An engine as the API builds it, with a short queue: two threads, one job per user, three in all."""
    engine = ScheduleEngine(threads=2, jobs_per_owner=1, max_jobs=3)
    yield engine
    engine.close()


async def test_one_owner_holds_one_thread_and_another_owner_gets_the_other(
    shared_engine: ScheduleEngine,
) -> None:
    alice = Held("alice's")
    try:
        alices = asyncio.create_task(shared_engine.run(alice, owner="alice@example.com"))
        await alice.wait_entered()
        with pytest.raises(EngineBusy, match="already have 1 schedule computation running") as busy:
            await shared_engine.run(lambda: "again", owner="alice@example.com")
        assert not busy.value.everyone
        # While Alice's job holds its thread, Bob's runs in the other one.
        assert await shared_engine.run(lambda: "bob's", owner="bob@example.com") == "bob's"
        assert shared_engine.jobs("alice@example.com") == 1
    finally:
        alice.released.set()
    assert await alices == "alice's"
    assert await shared_engine.run(lambda: "again", owner="alice@example.com") == "again"
    assert shared_engine.jobs() == 0


async def test_the_engine_queue_is_bounded_for_everyone(shared_engine: ScheduleEngine) -> None:
    held = [Held(name) for name in ("alice", "bob")]
    try:
        running = [
            asyncio.create_task(shared_engine.run(work, owner=f"{work.answer}@example.com")) for work in held
        ]
        for work in held:
            await work.wait_entered()
        queued = asyncio.create_task(shared_engine.run(lambda: "carol's", owner="carol@example.com"))
        await asyncio.sleep(0)  # admitted: it waits for a thread
        assert shared_engine.jobs() == 3
        with pytest.raises(EngineBusy, match="the schedule engine is busy") as busy:
            await shared_engine.run(lambda: "dave's", owner="dave@example.com")
        assert busy.value.everyone
    finally:
        for work in held:
            work.released.set()
    assert [await task for task in running] == ["alice", "bob"]
    assert await queued == "carol's"


async def test_a_caller_that_stops_waiting_keeps_its_place_until_the_work_is_done(
    shared_engine: ScheduleEngine,
) -> None:
    # A client that disconnects must not free its share while its work still runs in a thread.
    alice = Held("alice's")
    try:
        waiting = asyncio.create_task(shared_engine.run(alice, owner="alice@example.com"))
        await alice.wait_entered()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(EngineBusy):
            await shared_engine.run(lambda: "again", owner="alice@example.com")
    finally:
        alice.released.set()
    for _ in range(3000):  # the thread releases the place when the work returns
        if shared_engine.jobs("alice@example.com") == 0:
            break
        await asyncio.sleep(0.01)
    assert await shared_engine.run(lambda: "again", owner="alice@example.com") == "again"


async def test_work_without_an_owner_is_not_limited_per_owner() -> None:
    # The operator's reconciles: no owner, no per-owner limit (and by default no limit in all).
    engine = ScheduleEngine(threads=2, jobs_per_owner=1)
    held = [Held("first"), Held("second")]
    try:
        tasks = [asyncio.create_task(engine.run(work)) for work in held]
        for work in held:
            await work.wait_entered()
    finally:
        for work in held:
            work.released.set()
    assert [await task for task in tasks] == ["first", "second"]
    engine.close()
