"""How long the event loop stalls while a costly valid schedule compiles: on the loop, and in the engine.

Run alone: ``.venv/bin/python benchmarks/schedule_engine.py [--repeat 3]``.

The operator and the API used to compile schedules on their event loop; a
valid sub-daily rule with day filters costs up to seconds (benchmarks/
rrule_bombs.py), and for that long nothing else ran: no reconcile, no
request. They now hand schedule work to ``ScheduleEngine`` (threads of its
own, compiled schedules cached).

For each rule, a ticker coroutine sleeps 5 ms at a time on the loop while the
schedule is compiled, and records how late each tick wakes: its worst and
p99 lateness are how long any other coroutine (a reconcile, a request) would
have waited. Measured in the same run:

* ``inline`` - ``Recurrence.compile`` called on the loop (the code before);
* ``engine`` - ``await ScheduleEngine.compile`` with an empty cache;
* ``cached`` - the same spec again (an unchanged RecurringTask reconciled again).

A rule refused as too costly (its checks need more than the compile budget,
``Limits.max_compile_work``, since issue #16) is timed up to its refusal,
marked "refused"; refusals are never cached, so "cached" compiles it again.

Nothing is asserted: the table says, and docs/PERFORMANCE.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from todo_operator.domain import recurrence
from todo_operator.schedule_engine import ScheduleEngine

LIMITS = recurrence.Limits(min_spacing=timedelta(minutes=5))  # the operator's default
TICK = 0.005
RULES = {
    "weekly (benign)": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0",
    "minutely, Feb 29 03:xx": "FREQ=MINUTELY;INTERVAL=7;BYHOUR=3;BYMONTH=2;BYMONTHDAY=29",
    "minutely, Feb 03:07": "FREQ=MINUTELY;INTERVAL=59;BYMONTH=2;BYHOUR=3;BYMINUTE=7",
    "minutely, yearday 20": "FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57",
}


@dataclass(frozen=True)
class Stall:
    work_ms: float
    worst_ms: float
    p99_ms: float
    ticks: int


async def _measure(work: Callable[[], Awaitable[object]]) -> Stall:
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            late.append(max(0.0, time.perf_counter() - before - TICK))

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK * 2)  # the ticker is running before the work starts
    late.clear()
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    done.set()
    await ticking
    ordered = sorted(late) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Stall(elapsed * 1000, ordered[-1] * 1000, p99 * 1000, len(late))


def _spec(rule: str, index: int) -> recurrence.ScheduleSpec:
    # A different start per round: nothing is cached between rounds.
    return recurrence.ScheduleSpec(
        rrule=rule,
        start=datetime(2026, 1, 1 + index, 9),  # noqa: DTZ001 - a wall-clock time in time_zone
        time_zone="Europe/Berlin",
    )


async def main(repeat: int) -> None:
    print(f"{'rule':32} {'mode':7} {'compile ms':>11} {'loop stall worst ms':>20} {'p99 ms':>8}")
    for label, rule in RULES.items():
        rows: dict[str, list[Stall]] = {"inline": [], "engine": [], "cached": []}
        for index in range(repeat):
            spec = _spec(rule, index)
            engine = ScheduleEngine(LIMITS)

            async def inline(spec: recurrence.ScheduleSpec = spec) -> object:
                try:
                    return recurrence.Recurrence.compile(spec, limits=LIMITS)
                except recurrence.ScheduleTooCostly as refused:
                    return refused

            async def through_engine(
                engine: ScheduleEngine = engine, spec: recurrence.ScheduleSpec = spec
            ) -> object:
                try:
                    return await engine.compile(spec)
                except recurrence.ScheduleTooCostly as refused:
                    return refused

            rows["inline"].append(await _measure(inline))
            rows["engine"].append(await _measure(through_engine))
            rows["cached"].append(await _measure(through_engine))
            engine.close()
        try:
            recurrence.Recurrence.compile(_spec(rule, 0), limits=LIMITS)
            shown = label
        except recurrence.ScheduleTooCostly:
            shown = f"{label} (refused)"
        for mode, stalls in rows.items():
            work = statistics.median(s.work_ms for s in stalls)
            worst = statistics.median(s.worst_ms for s in stalls)
            p99 = statistics.median(s.p99_ms for s in stalls)
            print(f"{shown:32} {mode:7} {work:11.2f} {worst:20.2f} {p99:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per rule (medians are printed)")
    asyncio.run(main(parser.parse_args().repeat))
