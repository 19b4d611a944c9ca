"""Kubernetes-style conditions, kept the way ``kubectl wait --for=condition=Ready`` expects.

``lastTransitionTime`` moves only when the status flips, so a condition tells
*since when* something has been true, not when it was last looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from todo_operator.domain.resources import Condition

ConditionStatus = Literal["True", "False", "Unknown"]


def with_condition(
    conditions: Sequence[Condition],
    *,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Return ``conditions`` with the one of ``type_`` set (added or replaced), order kept."""
    previous = next((condition for condition in conditions if condition.type == type_), None)
    transitioned = previous is None or previous.status != status
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now if transitioned or previous is None else previous.last_transition_time,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if condition.type == type_ else condition for condition in conditions]
