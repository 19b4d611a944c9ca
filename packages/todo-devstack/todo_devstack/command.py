"""``todo-operator demo``: everything on one machine (see :mod:`todo_devstack.demo`)."""

from __future__ import annotations

import argparse
import logging
import os
import pathlib

_PORTS = 5  # as todo_devstack.demo.PORTS; not imported, so that `--help` loads no server code


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=pathlib.Path,
        default=pathlib.Path(".demo"),
        help="kubeconfig, env file, e-mails, database and saved objects (default .demo)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=18080,
        help="the API server listens here; PostgreSQL, the SMTP sink, Dapr and the REST API"
        " on the next four ports (default 18080)",
    )
    parser.add_argument("--with-examples", action="store_true", help="apply examples/ at start")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the state directory's database, e-mails and objects instead of starting fresh"
        " (after a crash too; a state that cannot be trusted is refused, saying why)",
    )
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _say(line: str) -> None:
    # Flushed line by line: whoever reads the demo through a pipe (a test, `tee`) sees each line as it comes.
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    from kube_emulator import journal
    from todo_devstack import demo, postgres
    from todo_operator import settings_registry
    from todo_operator.usage import UsageError

    # The demo builds its settings itself, but pydantic still fills the rest from TODO_* variables.
    settings_registry.refuse_unknown(os.environ)
    highest = 65535 - (_PORTS - 1)
    if not 1024 <= args.port_base <= highest:
        raise UsageError(f"--port-base must be between 1024 and {highest}, got {args.port_base}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # What the demo is for: seeing each CloudEvent the relay publishes.
    logging.getLogger("todo_devstack.dapr").setLevel(logging.INFO)
    try:
        demo.run(
            state_dir=args.state_dir,
            port_base=args.port_base,
            with_examples=args.with_examples,
            keep=args.keep,
            say=_say,
        )
    except postgres.PostgresUnavailable as error:
        raise UsageError(str(error)) from error
    except journal.Untrusted as error:  # --keep refusing what it cannot resume as it was (F26)
        raise UsageError(f"cannot keep the state: {error}") from error
    except OSError as error:
        raise UsageError(f"cannot start: {error}") from error
    return 0
