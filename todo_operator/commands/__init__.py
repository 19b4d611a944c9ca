"""One module per ``todo-operator`` command; see :mod:`todo_operator.cli`."""
