"""``python -m todo_operator``: the ``todo-operator`` command (as the installed script runs it)."""

import sys

from todo_operator.cli import main

sys.exit(main())
