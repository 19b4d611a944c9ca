"""``python -m kube_emulator --crd FILE ...``: the emulator alone, until SIGINT/SIGTERM.

For benchmarks that run it in a process of its own (so it does not share a GIL
with what drives it) and for poking at it by hand with kubectl. It serves the
CustomResourceDefinitions in the YAML files given (one or more documents each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pathlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from kube_emulator import journal
from kube_emulator.server import serve


def _definitions(files: Sequence[pathlib.Path]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in ``files``; anything else is refused naming the file."""
    found = []
    for file in files:
        try:
            documents = list(yaml.safe_load_all(file.read_text()))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or error
            raise ValueError(f"{file}{where}: not YAML ({problem})") from None
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                kind = document.get("kind") if isinstance(document, dict) else type(document).__name__
                raise ValueError(f"{file}: --crd files hold CustomResourceDefinitions only, found {kind}")
            found.append(document)
    return found


async def _main(
    host: str, port: int, crds: list[dict[str, Any]], event_log_size: int, kept: journal.Journal | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with serve(host=host, port=port, crds=crds, event_log_size=event_log_size, journal=kept) as server:
        print(f"serving {server.url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m kube_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--crd",
        type=pathlib.Path,
        action="append",
        default=[],
        help="a YAML file of CustomResourceDefinitions to serve (repeat for more)",
    )
    parser.add_argument("--event-log-size", type=int, default=10_000, help="watch events kept for resumes")
    parser.add_argument(
        "--journal",
        type=pathlib.Path,
        help="keep the objects in this file across restarts, crashes included (see journal.py)",
    )
    arguments = parser.parse_args()
    try:
        definitions = _definitions(arguments.crd)
    except (OSError, yaml.YAMLError, ValueError) as error:
        parser.error(str(error))
    try:
        kept = None if arguments.journal is None else journal.Journal.open(arguments.journal)
    except journal.Untrusted as error:
        sys.exit(f"{parser.prog}: cannot resume: {error}")
    asyncio.run(_main(arguments.host, arguments.port, definitions, arguments.event_log_size, kept))
