"""``todo-operator run``: the operator (settings from ``TODO_*`` environment variables)."""

from __future__ import annotations

import argparse
import asyncio
import os


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace", action="append", default=None, help="watch only this namespace (repeatable)"
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default: $TODO_LOG_LEVEL",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve Kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )


def run(args: argparse.Namespace) -> int:
    import psycopg

    from todo_operator import settings_registry
    from todo_operator.operator import main
    from todo_operator.operator.settings import load_settings
    from todo_operator.store import schema
    from todo_operator.telemetry.process import TelemetryError, configure_process
    from todo_operator.usage import UsageError

    settings_registry.refuse_unknown(os.environ)
    overrides = {"namespaces": args.namespace} if args.namespace else {}
    settings = load_settings(**overrides)
    try:
        telemetry = configure_process(service="todo-operator", level=args.log_level or settings.log_level)
    except TelemetryError as error:
        raise UsageError(str(error)) from None
    try:
        asyncio.run(main.run(settings, liveness_endpoint=args.liveness, telemetry=telemetry))
    except schema.SchemaOutOfDate as error:
        raise UsageError(str(error)) from error
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from error
    except (OSError, ValueError) as error:  # e.g. an unreadable TODO_NOTIFY_JOB_TEMPLATE
        raise UsageError(str(error)) from error
    return 0
