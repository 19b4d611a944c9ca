"""The schedule engine: compiled once per spec, refusals not kept, the caller's context in its threads."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from todo_operator.domain import recurrence
from todo_operator.schedule_engine import ScheduleEngine

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
