"""Conditions as kubectl wait and kstatus read them: Ready, and Stalled or Reconciling beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests import kstatus
from todo_operator.domain import conditions
from todo_operator.domain.resources import Condition

T0 = datetime(2026, 12, 3, 9, tzinfo=UTC)


def _types(found: list[Condition]) -> dict[str, str]:
    return {condition.type: condition.status for condition in found}


def _body(found: list[Condition], *, generation: int = 1) -> dict[str, object]:
    wire = [condition.model_dump(mode="json", by_alias=True) for condition in found]
    return {
        "kind": "Task",
        "metadata": {"generation": generation},
        "status": {"observedGeneration": 1, "conditions": wire},
    }


def test_refused_is_stalled_and_kstatus_says_failed() -> None:
    found = conditions.readiness([], ready=False, reason="InvalidSpec", message="bad", now=T0, generation=1)
    assert _types(found) == {"Ready": "False", "Stalled": "True"}
    assert kstatus.compute(_body(found)) == ("Failed", "bad")


def test_on_its_way_is_reconciling_and_kstatus_says_in_progress() -> None:
    found = conditions.readiness(
        [], ready=False, reason="Pending", phase="Pending", message="soon", now=T0, generation=1
    )
    assert _types(found) == {"Ready": "False", "Reconciling": "True"}
    assert kstatus.compute(_body(found)) == ("InProgress", "soon")


def test_ready_carries_ready_alone_once_fixed_and_kstatus_says_current() -> None:
    stalled = conditions.readiness([], ready=False, reason="InvalidSpec", message="", now=T0, generation=1)
    later = T0 + timedelta(minutes=5)
    fixed = conditions.readiness(stalled, ready=True, reason="Open", message="", now=later, generation=2)
    assert _types(fixed) == {"Ready": "True"}
    assert fixed[0].last_transition_time == later
    assert kstatus.compute(_body(fixed, generation=1)) == ("Current", "Resource is current")


def test_an_unobserved_generation_is_in_progress_whatever_the_conditions_say() -> None:
    ready = conditions.readiness([], ready=True, reason="Open", message="", now=T0, generation=1)
    status, message = kstatus.compute(_body(ready, generation=2))
    assert (status, message) == ("InProgress", "Task generation is 2, but latest observed generation is 1")


def test_staying_stalled_keeps_the_time_it_began() -> None:
    first = conditions.readiness([], ready=False, reason="InvalidSpec", message="", now=T0, generation=1)
    again = conditions.readiness(
        first,
        ready=False,
        reason="InvalidSpec",
        message="",
        now=T0 + timedelta(hours=1),
        generation=1,
    )
    assert {c.type: c.last_transition_time for c in again} == {"Ready": T0, "Stalled": T0}


def test_a_failed_reminder_is_stalled_whatever_its_reason() -> None:
    found = conditions.readiness(
        [], ready=False, reason="TaskNotFound", message="gone", now=T0, generation=1, phase="Failed"
    )
    assert _types(found) == {"Ready": "False", "Stalled": "True"}
