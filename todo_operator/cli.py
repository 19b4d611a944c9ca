"""The one command-line entry point: ``todo-operator <command>``.

Each command lives in its own module under :mod:`todo_operator.commands` and is
imported only when it is chosen, so ``todo-operator preview`` starts without
loading Kopf, a web framework or a database driver.

A command module provides ``configure(parser)`` (adds its arguments) and
``run(args) -> int`` (the exit code). Invalid input exits with code 2 and one
readable line on stderr, as argparse does for bad flags.

``demo`` is not part of the product: the ``todo-devstack`` distribution (in
``packages/``, installed by ``make``) provides it through the entry point group
``todo_operator.commands``. Where it is not installed (the image), ``demo`` is
refused with one line saying where it comes from.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from typing import Protocol

from todo_operator.usage import UsageError

# command name -> (module under todo_operator.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the operator (watches the cluster, relays the outbox)"),
    "crds": ("crds", "print the CustomResourceDefinitions generated from the models"),
    "migrate": ("migrate", "apply or roll back the PostgreSQL schema migrations"),
    "preview": ("preview", "print the upcoming occurrences of a schedule"),
    "api": ("api", "run the REST shim (FastAPI on uvicorn; settings from TODO_API_*)"),
    "relay": ("relay", "run the outbox relay alone (publishes the outbox through the Dapr sidecar)"),
    "notify": ("notify", "send one reminder now (the entry point of reminder CronJobs)"),
}
# command name -> one-line help, for commands other distributions provide (entry points)
PLUGGED: dict[str, str] = {
    "demo": "run the whole system on this machine (no cluster needed; from todo-devstack)",
}
PLUGIN_GROUP = "todo_operator.commands"


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(command: str) -> CommandModule:
    if command in PLUGGED:
        found = importlib.metadata.entry_points(group=PLUGIN_GROUP, name=command)
        if not found:
            raise UsageError(
                f"this installation has no '{command}' command: it comes with the todo-devstack"
                " distribution (packages/todo-devstack; `make demo` installs it), not with the product"
            )
        plugged: CommandModule = next(iter(found)).load()
        return plugged
    module_name, _ = COMMANDS[command]
    module: CommandModule = importlib.import_module(f"todo_operator.commands.{module_name}")
    return module


# What --help says first: plain text (the module docstring is for readers of the code).
DESCRIPTION = (
    "Todo tasks as Kubernetes resources: the operator, its REST API and their tools."
    " Each command has its own --help."
)


def version() -> str:
    """This installation's version (the distribution's metadata, so the image and the wheel agree)."""
    try:
        return importlib.metadata.version("todo-operator")
    except importlib.metadata.PackageNotFoundError:  # sources on sys.path, never installed
        return "unknown (not installed)"


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-operator", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"todo-operator {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    helps = {name: help_text for name, (_, help_text) in COMMANDS.items()} | PLUGGED
    for name, help_text in helps.items():
        command_parser = sub.add_parser(name, help=help_text)
        # Only the chosen command's module is imported (and configures its flags).
        if name == chosen:
            _load(name).configure(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(arguments)
        args = parser.parse_args(arguments)
        return _load(args.command).run(args)
    except UsageError as error:
        chosen = next((arg for arg in arguments if not arg.startswith("-")), "")
        print(f"todo-operator {chosen}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
