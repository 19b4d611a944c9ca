"""The operator in a thread of its own, for the tests and the demo.

Kopf cancels every asyncio task created after it started when it stops, so
it must not share an event loop with anything else (pytest-asyncio's loop,
the API emulator): it gets its own thread and loop here, a ready flag to wait
for and a stop flag to end it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType

from todo_operator.clock import Clock
from todo_operator.events.relay import RelaySettings
from todo_operator.operator import main
from todo_operator.operator.settings import OperatorSettings
from todo_operator.telemetry.settings import TelemetrySettings


class _NoSignalWarning(logging.Filter):
    # Kopf warns that it cannot install signal handlers outside the main thread;
    # here that is the point: whoever owns the main thread handles the signals.
    def filter(self, record: logging.LogRecord) -> bool:
        return "OS signals are ignored" not in record.getMessage()


logging.getLogger("kopf._core.reactor.running").addFilter(_NoSignalWarning())


class OperatorThread:
    def __init__(
        self,
        settings: OperatorSettings,
        *,
        clock: Clock | None = None,
        relay_settings: RelaySettings | None = None,
        telemetry: TelemetrySettings | None = None,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry or TelemetrySettings(metrics_port=None)
        self._clock = clock
        self._relay_settings = relay_settings
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="todo-operator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(
                main.run(
                    self._settings,
                    clock=self._clock,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    relay_settings=self._relay_settings,
                    telemetry=self._telemetry,
                )
            )
        except BaseException as error:  # reported by start()/stop(); a thread cannot raise to its caller
            self._error = error
            self._ready.set()

    def start(self, *, timeout: float = 30.0) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the operator did not become ready within {timeout}s")
        if self._error is not None:
            raise RuntimeError("the operator failed to start") from self._error
        return self

    def stop(self, *, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the operator did not stop within {timeout}s")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> OperatorThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
