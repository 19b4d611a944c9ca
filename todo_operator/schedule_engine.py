"""The recurrence engine off the event loop: each schedule compiled once, run in threads of its own.

A valid schedule can cost a lot of CPU. HOURLY and MINUTELY rules with day
filters are scanned minute by minute, and the worst valid one found,
``FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57``, takes about 0.2 s to
compile (4.1 s before its spacing sample was capped; docs/PERFORMANCE.md,
"RRULE bombs"). On the event loop that would stop every other reconcile of the
operator, and every other request of the API, for as long: anyone allowed to
preview schedules could stall the API.

So the operator and the API hand schedule work to a :class:`ScheduleEngine`:

* a thread pool of its own, with few threads: a flood of costly schedules
  queues behind them instead of filling the loop's default executor, which
  other work needs (DNS lookups);
* a cache of compiled schedules keyed by the spec (a frozen, hashable
  dataclass) and the limits, so a reconcile of an unchanged RecurringTask
  does not compile again. Schedules are immutable once compiled, so threads
  share them. Refused specs are not cached: they raise, and a refused
  RecurringTask is not reconciled again until it is edited.

The engine is pure Python and holds the GIL while it works. The loop then gets
a share of the interpreter (it switches every 5 ms), not the whole of it, so a
costly schedule slows the process down but no longer stops it.
asyncio's ``to_thread`` would run on the default executor, which is shared and
unbounded for this purpose; hence the executor here.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from todo_operator.domain import recurrence


class ScheduleEngine:
    """Compiles and asks schedules in a few threads of its own, with compiled schedules cached."""

    def __init__(
        self, limits: recurrence.Limits | None = None, *, threads: int = 2, cache_size: int = 1024
    ) -> None:
        self.limits = recurrence.Limits() if limits is None else limits
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="schedule-engine")
        self._compiled = functools.lru_cache(maxsize=cache_size)(self._compile)

    def _compile(self, spec: recurrence.ScheduleSpec) -> recurrence.Recurrence:
        return recurrence.Recurrence.compile(spec, limits=self.limits)

    async def compile(self, spec: recurrence.ScheduleSpec) -> recurrence.Recurrence:
        """The compiled schedule; raises :class:`recurrence.ScheduleError` as ``compile`` does."""
        return await self.run(lambda: self._compiled(spec))

    async def run[T](self, work: Callable[[], T]) -> T:
        """Run ``work`` (schedule arithmetic) in the engine's threads, with the caller's context."""
        context = contextvars.copy_context()  # the current span and logging context go along
        return await asyncio.get_running_loop().run_in_executor(self._executor, context.run, work)

    def cache_info(self) -> functools._CacheInfo:
        return self._compiled.cache_info()

    def close(self) -> None:
        """Let the threads go; work already started finishes."""
        self._executor.shutdown(wait=False, cancel_futures=True)
