"""``todo-operator run``: the operator (settings from ``TODO_*`` environment variables)."""

from __future__ import annotations

import argparse
import asyncio
import logging


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace", action="append", default=None, help="watch only this namespace (repeatable)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    import psycopg
    from pydantic import ValidationError

    from todo_operator.cli import UsageError
    from todo_operator.operator import main
    from todo_operator.operator.settings import OperatorSettings
    from todo_operator.store import schema

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        overrides = {"namespaces": args.namespace} if args.namespace else {}
        settings = OperatorSettings(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"TODO_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        raise UsageError(problems) from error
    try:
        asyncio.run(main.run(settings))
    except schema.SchemaOutOfDate as error:
        raise UsageError(str(error)) from error
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from error
    return 0
