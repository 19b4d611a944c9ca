"""LoopThread: an async server behind a synchronous start/call/stop."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator

import pytest

from kube_emulator.loopthread import LoopThread


def test_start_call_stop_runs_in_its_own_thread() -> None:
    left = threading.Event()

    @contextlib.asynccontextmanager
    async def serve() -> AsyncIterator[dict[str, int]]:
        try:
            yield {"answer": 42}
        finally:
            left.set()

    runner = LoopThread(name="test-server", serve=serve)
    assert runner.start() == {"answer": 42}
    assert runner.call(lambda served: (served["answer"], threading.current_thread().name)) == (
        42,
        "test-server",
    )
    runner.stop()
    assert left.is_set()
    with pytest.raises(RuntimeError, match="test-server is not running"):
        _ = runner.served


def test_a_server_that_fails_to_start_says_so() -> None:
    @contextlib.asynccontextmanager
    async def serve() -> AsyncIterator[None]:
        raise OSError("address already in use")
        yield

    runner = LoopThread(name="broken", serve=serve)
    with pytest.raises(RuntimeError, match="broken failed to start") as failed:
        runner.start()
    assert isinstance(failed.value.__cause__, OSError)
