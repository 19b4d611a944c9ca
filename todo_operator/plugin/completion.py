"""``kubectl_complete-todo``: shell completion of ``kubectl todo``, by kubectl's plugin protocol.

kubectl (1.26 and later) completes ``kubectl todo …<TAB>`` by running
``kubectl_complete-todo`` with the words typed after ``todo``, the last one
being the word to complete (empty for a new one), and reads one candidate per
line (``value<TAB>description``), then ``:<directive>`` as Cobra's
``__complete`` answers (kubectl's ``plugin_completion.go``). The candidates
come from click's completion API over the same command definitions as the
plugin itself, so they cannot drift apart.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from click.shell_completion import ShellComplete

from todo_operator.plugin import commands

# Cobra's ShellCompDirectiveNoFileComp: offer only these candidates, never file names.
NO_FILE_COMPLETION = 4


def candidates(words: Sequence[str]) -> list[str]:
    """The lines kubectl reads for ``kubectl todo <words>``: candidates, then the directive."""
    typed, incomplete = list(words[:-1]), (words[-1] if words else "")
    completer = ShellComplete(commands.main, {}, "kubectl todo", "_KUBECTL_TODO_COMPLETE")
    lines = [
        f"{item.value}\t{item.help}" if item.help else str(item.value)
        for item in completer.get_completions(typed, incomplete)
    ]
    return [*lines, f":{NO_FILE_COMPLETION}"]


def run() -> None:
    """The ``kubectl_complete-todo`` entry point."""
    print("\n".join(candidates(sys.argv[1:])))
