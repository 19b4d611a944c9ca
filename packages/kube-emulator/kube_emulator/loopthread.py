"""An async server in a thread and event loop of its own, for synchronous callers.

Tests, fixtures and the demo are synchronous, while the devstack's servers
(the API emulator, the Dapr double) are asyncio servers; and Kopf must not
share their loop. ``LoopThread`` enters an async context manager in its own
thread, hands back what it yielded, runs calls in that loop on request and
leaves the context when stopped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any


class LoopThread[Served]:
    def __init__(self, *, name: str, serve: Callable[[], AbstractAsyncContextManager[Served]]) -> None:
        self._name = name
        self._serve = serve
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._served: Served | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name=name, daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with self._serve() as served:
                self._served = served
                self._ready.set()
                await self._stop.wait()
        except BaseException as error:
            self._error = error
            raise
        finally:
            self._served = None
            self._ready.set()

    @property
    def served(self) -> Served:
        if self._served is None:
            raise RuntimeError(f"{self._name} is not running")
        return self._served

    def start(self, *, timeout: float = 30.0) -> Served:
        self._thread.start()
        self._ready.wait(timeout=timeout)
        if self._error is not None:
            raise RuntimeError(f"{self._name} failed to start") from self._error
        return self.served

    def stop(self, *, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=timeout)

    def call[Result](self, fn: Callable[[Served], Result]) -> Result:
        """Run ``fn(served)`` in the server's loop (thread-safely) and return its result."""

        async def call() -> Result:
            return fn(self.served)

        return self.run(call())

    def run[Result](self, coroutine: Awaitable[Result]) -> Result:
        """Await ``coroutine`` in the server's loop and return its result."""
        if self._loop is None:
            raise RuntimeError(f"{self._name} is not running")

        async def wrapped() -> Any:
            return await coroutine

        result: Result = asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout=30)
        return result
