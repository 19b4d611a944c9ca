"""The recurrence engine off the event loop: each schedule compiled once, run in threads of its own.

A valid schedule can cost a lot of CPU. HOURLY and MINUTELY rules with day
filters are scanned minute by minute: the worst valid one found,
``FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57``, took about 0.2 s to
compile. Since issue #16 a compile stops, refused as too costly, once it has
done about 75 ms of work (``recurrence.Limits.max_compile_work``, counted,
not timed; docs/PERFORMANCE.md, "RRULE bombs"), and so does a list of
upcoming occurrences. On the event loop even that would stop every other
reconcile of the operator, and every other request of the API, for as long:
anyone allowed to preview schedules could stall the API.

So the operator and the API hand schedule work to a :class:`ScheduleEngine`:

* a thread pool of its own, with few threads: a flood of costly schedules
  queues behind them instead of filling the loop's default executor, which
  other work needs (DNS lookups);
* a cache of compiled schedules keyed by the spec (a frozen, hashable
  dataclass) and the limits, so a reconcile of an unchanged RecurringTask
  does not compile again. Schedules are immutable once compiled, so threads
  share them. Refused specs are not cached: they raise, and a refused
  RecurringTask is not reconciled again until it is edited;
* limits on who may queue work (the API's users; the operator sets none):
  at most ``jobs_per_owner`` jobs of one owner queued or running, and at most
  ``max_jobs`` in all. More are refused at once with :class:`EngineBusy`
  (the API answers 429 or 503 with ``Retry-After``) rather than queued: a
  queue would let one user's flood delay everyone behind it. With fewer jobs
  per owner than threads, one user never holds every thread, so another's
  preview always finds one. A job keeps its place until its thread is done
  with it, even when its caller has gone (a client that disconnects cannot
  queue more than its share).

The engine is pure Python and holds the GIL while it works. The loop then gets
a share of the interpreter (at each switch interval: the API sets 1 ms), not
the whole of it, so a costly schedule slows the process down but no longer
stops it, and each job holds its thread for a bounded time.
asyncio's ``to_thread`` would run on the default executor, which is shared and
unbounded for this purpose; hence the executor here.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from todo_operator.domain import recurrence


class EngineBusy(Exception):
    """Work refused at once: its owner (with ``everyone``: all owners together) has all it may queue."""

    def __init__(self, message: str, *, everyone: bool) -> None:
        super().__init__(message)
        self.everyone = everyone


class ScheduleEngine:
    """Compiles and asks schedules in a few threads of its own, with compiled schedules cached."""

    def __init__(
        self,
        limits: recurrence.Limits | None = None,
        *,
        threads: int = 2,
        cache_size: int = 1024,
        jobs_per_owner: int | None = None,
        max_jobs: int | None = None,
    ) -> None:
        self.limits = recurrence.Limits() if limits is None else limits
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="schedule-engine")
        self._compiled = functools.lru_cache(maxsize=cache_size)(self._compile)
        self._jobs_per_owner = jobs_per_owner
        self._max_jobs = max_jobs
        # Jobs queued or running, in all and by owner; released from the engine's threads.
        self._lock = threading.Lock()
        self._jobs = 0
        self._jobs_by_owner: collections.Counter[str] = collections.Counter()

    def _compile(self, spec: recurrence.ScheduleSpec) -> recurrence.Recurrence:
        return recurrence.Recurrence.compile(spec, limits=self.limits)

    async def compile(
        self, spec: recurrence.ScheduleSpec, *, owner: str | None = None
    ) -> recurrence.Recurrence:
        """The compiled schedule; raises :class:`recurrence.ScheduleError` as ``compile`` does."""
        return await self.run(lambda: self._compiled(spec), owner=owner)

    async def run[T](self, work: Callable[[], T], *, owner: str | None = None) -> T:
        """Run ``work`` (schedule arithmetic) in the engine's threads, with the caller's context.

        ``owner`` (an API user) is counted against ``jobs_per_owner``; raises
        :class:`EngineBusy` when that, or ``max_jobs``, is reached.
        """
        self._admit(owner)
        context = contextvars.copy_context()  # the current span and logging context go along
        try:
            future: Future[T] = self._executor.submit(context.run, work)
        except BaseException:
            self._release(owner)
            raise
        # Released when the thread is done (or the job is cancelled before it starts), not when
        # the caller stops waiting: a cancelled request's work goes on running in its thread.
        future.add_done_callback(lambda _: self._release(owner))
        return await asyncio.wrap_future(future)

    def jobs(self, owner: str | None = None) -> int:
        """Jobs queued or running: in all, or of ``owner``."""
        with self._lock:
            return self._jobs if owner is None else self._jobs_by_owner[owner]

    def _admit(self, owner: str | None) -> None:
        per_owner = self._jobs_per_owner
        with self._lock:
            if owner is not None and per_owner is not None and self._jobs_by_owner[owner] >= per_owner:
                raise EngineBusy(
                    f"you already have {per_owner} schedule computation{'' if per_owner == 1 else 's'}"
                    " running, the most allowed at a time",
                    everyone=False,
                )
            if self._max_jobs is not None and self._jobs >= self._max_jobs:
                raise EngineBusy(
                    f"the schedule engine is busy: {self._max_jobs} computations are queued", everyone=True
                )
            self._jobs += 1
            if owner is not None:
                self._jobs_by_owner[owner] += 1

    def _release(self, owner: str | None) -> None:
        with self._lock:
            self._jobs -= 1
            if owner is not None:
                self._jobs_by_owner[owner] -= 1
                if not self._jobs_by_owner[owner]:
                    del self._jobs_by_owner[owner]  # memory stays bounded by the jobs in flight

    def cache_info(self) -> functools._CacheInfo:
        return self._compiled.cache_info()

    def close(self) -> None:
        """Let the threads go; work already started finishes."""
        self._executor.shutdown(wait=False, cancel_futures=True)
