"""Kubernetes-style conditions, kept the way ``kubectl wait --for=condition=Ready`` expects,
and the way kstatus (Flux's health checks, kpt, cli-utils) reads them.

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


def readiness(
    conditions: Sequence[Condition],
    *,
    ready: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
    phase: str | None = None,
) -> list[Condition]:
    """``Ready``, and the two "abnormal-true" conditions of the kstatus convention.

    ``Stalled`` is True while the object needs a person: the operator refused its spec
    (a reason ``Invalid*``) or it ended ``Failed`` (a reminder); kstatus then says Failed.
    ``Reconciling`` is True while it is not ready but on its way (a reminder waiting for its
    moment's trigger); kstatus says InProgress. Each is left out when it does not hold, as
    the convention asks, so a ready object carries Ready alone and kstatus says Current.
    """
    stalled = not ready and (reason.startswith("Invalid") or phase == "Failed")
    result = with_condition(
        conditions,
        type_="Ready",
        status="True" if ready else "False",
        reason=reason,
        message=message,
        now=now,
        generation=generation,
    )
    for type_, holds in (("Reconciling", not ready and not stalled), ("Stalled", stalled)):
        result = [condition for condition in result if condition.type != type_ or holds]
        if holds:
            result = with_condition(
                result,
                type_=type_,
                status="True",
                reason=reason,
                message=message,
                now=now,
                generation=generation,
            )
    return result
