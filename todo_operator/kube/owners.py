"""Owner references: made one way, read one way.

Every object the operator makes for another one (an occurrence for its
RecurringTask, a Reminder for its Task, a CronJob or Job for its Reminder)
names that object as its controller, so the garbage collector removes it
with its owner; the API reads which series a Task belongs to the same way.
"""

from __future__ import annotations

from typing import Any

from todo_operator.domain import crds, resources
from todo_operator.domain.ownership import controller_of

__all__ = ["controller_of", "controller_reference", "live_controller"]
from todo_operator.kube.client import Kube


def controller_reference(owner: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """A reference making ``owner`` (one of our kinds) the controller of the object that carries it."""
    meta = owner["metadata"]
    return {
        "apiVersion": resources.API_VERSION,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        # Foreground deletion of the owner waits for this object to go first.
        "blockOwnerDeletion": True,
    }


async def live_controller(kube: Kube, body: dict[str, Any], *, kind: crds.Kind) -> dict[str, Any] | None:
    """The object of ``kind`` that controls ``body``: the one of the reference's uid (a new
    object of the same name is another one), and None once it is being deleted."""
    reference = controller_of(body, kind=kind.kind)
    if reference is None:
        return None
    namespace = body["metadata"]["namespace"]
    owner = await kube.get(kind, namespace=namespace, name=str(reference["name"]))
    if owner is None or owner["metadata"].get("uid") != reference.get("uid"):
        return None
    return None if owner["metadata"].get("deletionTimestamp") else owner
