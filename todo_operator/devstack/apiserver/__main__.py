"""``python -m todo_operator.devstack.apiserver``: the emulator alone, with our CRDs, until SIGINT/SIGTERM.

For benchmarks that run it in a process of its own (so it does not share a GIL
with what drives it) and for poking at it by hand with kubectl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pathlib
import signal
import sys

from todo_operator.devstack.apiserver import journal
from todo_operator.devstack.apiserver.server import serve
from todo_operator.domain import crds


async def _main(host: str, port: int, event_log_size: int, kept: journal.Journal | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with serve(
        host=host, port=port, crds=crds.all_crds(), event_log_size=event_log_size, journal=kept
    ) as server:
        print(f"serving {server.url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m todo_operator.devstack.apiserver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--event-log-size", type=int, default=10_000, help="watch events kept for resumes")
    parser.add_argument(
        "--journal",
        type=pathlib.Path,
        help="keep the objects in this file across restarts, crashes included (see journal.py)",
    )
    arguments = parser.parse_args()
    try:
        kept = None if arguments.journal is None else journal.Journal.open(arguments.journal)
    except journal.Untrusted as error:
        sys.exit(f"{parser.prog}: cannot resume: {error}")
    asyncio.run(_main(arguments.host, arguments.port, arguments.event_log_size, kept))
