"""
A Kubernetes API server emulator for tests and the local demo: KMock's
``KubernetesEmulator`` extended with the real API server's semantics that Kopf,
kubectl and our operator rely on. See ``server.py`` for what is overridden in
kmock and why, and each module's docstring for the behaviour it reproduces.
"""

from kube_emulator.errors import ApiError
from kube_emulator.server import (
    ApiServerThread,
    Emulator,
    RunningServer,
    serve,
    write_kubeconfig,
)

__all__ = ["ApiError", "ApiServerThread", "Emulator", "RunningServer", "serve", "write_kubeconfig"]
