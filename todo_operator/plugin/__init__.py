"""``kubectl todo``: the kubectl plugin (``kubectl-todo`` and ``kubectl_complete-todo``, docs/KUBECTL.md)."""
