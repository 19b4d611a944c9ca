"""``todo-operator api``: the REST shim (FastAPI on uvicorn).

Settings come from the environment like the operator's: ``TODO_DATABASE_URL``
and ``TODO_KUBE_API_URL`` (default: kubeconfig or in-cluster), and the
shim's own ``TODO_API_*`` (namespace, token checks, limits; see
``todo_operator/api/settings.py`` and docs/API.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from pydantic import ValidationError

from todo_operator.api.settings import Connections
from todo_operator.clock import SystemClock
from todo_operator.usage import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    from todo_operator import settings_registry
    from todo_operator.api import server
    from todo_operator.api.settings import ApiSettings
    from todo_operator.telemetry.process import TelemetryError, configure_process

    settings_registry.refuse_unknown(os.environ)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    try:
        connections = Connections()  # type: ignore[call-arg]  # database_url comes from the environment
    except ValidationError as error:
        raise UsageError.from_settings(error, prefix="TODO_") from None
    try:
        settings = ApiSettings()
    except ValidationError as error:
        raise UsageError.from_settings(error, prefix="TODO_API_") from None
    try:
        configure_process(service="todo-api", level=args.log_level)
    except TelemetryError as error:
        raise UsageError(str(error)) from None
    # The schedule engine's threads hold the GIL while they compute, and the event loop, which
    # answers every other request, waits up to the switch interval for it each time it wakes:
    # 1 ms rather than CPython's 5 ms cuts what a user's costly previews add to the others'
    # reads by about half (docs/PERFORMANCE.md, "Engine fairness").
    sys.setswitchinterval(0.001)
    try:
        asyncio.run(
            server.serve(
                settings,
                database_url=connections.database_url,
                kube_api_url=connections.kube_api_url,
                clock=SystemClock(),
                host=args.host,
                port=args.port,
            )
        )
    except KeyboardInterrupt:
        return 0
    return 0
