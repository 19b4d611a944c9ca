"""``todo-operator relay``: the outbox relay alone (settings from ``TODO_*`` environment variables).

``todo-operator run`` runs the same relay next to Kopf; this command is for
running it as its own Deployment (more replicas than the operator, or none of
the operator's permissions).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    import psycopg
    from pydantic import ValidationError

    from todo_operator.cli import UsageError
    from todo_operator.events.relay import RelaySettings, run_relay
    from todo_operator.store import schema

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = RelaySettings()  # type: ignore[call-arg]  # database_url comes from TODO_DATABASE_URL
    except ValidationError as error:
        problems = "; ".join(
            f"TODO_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        raise UsageError(problems) from error

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await asyncio.to_thread(schema.require_current, settings.database_url)
        await run_relay(settings, stop=stop)

    try:
        asyncio.run(main())
    except schema.SchemaOutOfDate as error:
        raise UsageError(str(error)) from error
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from error
    return 0
