"""Which object controls another: the one owner reference marked ``controller``.

Pure reading of metadata, shared by the operator, the REST API and the kubectl
plugin (each finds the controlling object its own way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def controller_of(body: Mapping[str, Any], *, kind: str) -> dict[str, Any] | None:
    """The owner reference of ``kind`` that controls ``body``, if any."""
    for reference in body.get("metadata", {}).get("ownerReferences", []) or []:
        if reference.get("kind") == kind and reference.get("controller"):
            found: dict[str, Any] = reference
            return found
    return None
