"""The Kubernetes adapter that the operator and the REST API share (see :mod:`.client`)."""

from todo_operator.kube.client import Body, Kube, client_for, event_manifest
from todo_operator.kube.errors import (
    AlreadyExists,
    Conflict,
    Invalid,
    KubeError,
    NotFound,
    TransientKubeError,
)

__all__ = [
    "AlreadyExists",
    "Body",
    "Conflict",
    "Invalid",
    "Kube",
    "KubeError",
    "NotFound",
    "TransientKubeError",
    "client_for",
    "event_manifest",
]
