"""The entry point as a person meets it: ``--version`` and help in plain text."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from todo_operator import cli

# reStructuredText and Markdown markup that a terminal would show as is.
MARKUP = re.compile(r"``|:(?:class|func|meth|mod|attr):`|\*\*")


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "todo_operator", *arguments], capture_output=True, text=True, check=False
    )


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    result = _run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"todo-operator {version('todo-operator')}")


@pytest.mark.parametrize("command", ["", *cli.COMMANDS, *cli.PLUGGED])
def test_help_is_plain_text(command: str) -> None:
    result = _run(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: todo-operator" in result.stdout
    assert MARKUP.findall(result.stdout) == []


def test_the_markup_check_finds_markup() -> None:
    assert MARKUP.findall("The one entry point: ``todo-operator <command>``, see :class:`Kind`.")
