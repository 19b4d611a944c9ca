"""``todo-operator demo``: everything on one machine (see :mod:`todo_operator.devstack.demo`)."""

from __future__ import annotations

import argparse
import logging
import pathlib


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=pathlib.Path, default=pathlib.Path(".demo"))
    parser.add_argument(
        "--port-base",
        type=int,
        default=18080,
        help="the API server listens here; PostgreSQL, the SMTP sink and Dapr on the next three ports",
    )
    parser.add_argument("--with-examples", action="store_true", help="apply examples/ at start")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    from todo_operator.cli import UsageError
    from todo_operator.devstack import demo, postgres

    if not 1024 <= args.port_base <= 65532:
        raise UsageError(f"--port-base must be between 1024 and 65532, got {args.port_base}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # What the demo is for: seeing each CloudEvent the relay publishes.
    logging.getLogger("todo_operator.devstack.dapr").setLevel(logging.INFO)
    try:
        demo.run(state_dir=args.state_dir, port_base=args.port_base, with_examples=args.with_examples)
    except postgres.PostgresUnavailable as error:
        raise UsageError(str(error)) from error
    except OSError as error:
        raise UsageError(f"cannot start: {error}") from error
    return 0
