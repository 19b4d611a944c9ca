"""kstatus's generic rules, as Flux, kpt and cli-utils read a custom resource's status.

A port of ``checkGenericProperties`` and ``checkGeneration`` of
sigs.k8s.io/cli-utils pkg/kstatus/status/generic.go (Go; nothing here can run
it), in the same order, for resources of a kind kstatus has no rules of its
own for: Terminating while deleted; InProgress while ``status.observedGeneration``
differs from ``metadata.generation``; InProgress on ``Reconciling=True``;
Failed on ``Stalled=True``; otherwise Current.
"""

from __future__ import annotations

from typing import Any, Literal

Status = Literal["Terminating", "InProgress", "Failed", "Current"]


def compute(body: dict[str, Any]) -> tuple[Status, str]:
    """(status, message) of one object, as kstatus's Compute gives them for a custom resource."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating", "Resource scheduled for deletion"
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        kind = body.get("kind", "")
        return (
            "InProgress",
            f"{kind} generation is {generation}, but latest observed generation is {observed}",
        )
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Reconciling" and condition.get("status") == "True":
            return "InProgress", str(condition.get("message", ""))
        if condition.get("type") == "Stalled" and condition.get("status") == "True":
            return "Failed", str(condition.get("message", ""))
    return "Current", "Resource is current"
