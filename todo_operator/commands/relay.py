"""``todo-operator relay``: the outbox relay alone (settings from ``TODO_*`` environment variables).

``todo-operator run`` runs the same relay next to Kopf; this command is for
running it as its own Deployment (more replicas than the operator, or none of
the operator's permissions).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    import psycopg
    from pydantic import ValidationError

    from todo_operator import settings_registry
    from todo_operator.events.relay import RelaySettings, run_relay
    from todo_operator.operator.main import TOPICS
    from todo_operator.store import schema
    from todo_operator.telemetry import metrics, server
    from todo_operator.telemetry.process import TelemetryError, configure_process
    from todo_operator.usage import UsageError

    settings_registry.refuse_unknown(os.environ)
    try:
        telemetry = configure_process(service="todo-operator-relay", level=args.log_level)
    except TelemetryError as error:
        raise UsageError(str(error)) from None
    try:
        settings = RelaySettings()  # type: ignore[call-arg]  # database_url comes from TODO_DATABASE_URL
    except ValidationError as error:
        raise UsageError.from_settings(error, prefix="TODO_") from error

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await asyncio.to_thread(schema.require_current, settings.database_url)
        registry = metrics.new_registry()
        measured = metrics.RelayMetrics(registry, topics=TOPICS)
        async with contextlib.AsyncExitStack() as serving:
            if telemetry.metrics_port is not None:
                await serving.enter_async_context(
                    server.serving(registry, host=telemetry.metrics_host, port=telemetry.metrics_port)
                )
            await run_relay(settings, stop=stop, metrics=measured)

    try:
        asyncio.run(main())
    except schema.SchemaOutOfDate as error:
        raise UsageError(str(error)) from error
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from error
    return 0
