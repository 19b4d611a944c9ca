"""Hostile manifests against the CRD schemas and the operator's reconcilers, in-process, by the thousand.

Each generated Task, RecurringTask and Reminder is either refused by the CRD
schema (the emulator's admission, as the API server does it) with every
error naming a field of the manifest, or accepted and then reconciled, or
reported as ``Ready=False`` with the field named and nothing recorded — never
a crash. Where the schema accepts what the model refuses, only the
documented gaps are allowed (``checks.KNOWN_SCHEMA_GAPS``).

Examples are drawn in batches (one hypothesis example checks several
manifests): the per-example overhead of the engine is then shared, which
is what keeps several thousand cases within a few seconds. Runs are
derandomized and keep no example database, so CI sees the same cases every
time; the counts go to ``tally``.
"""

from __future__ import annotations

import asyncio
import collections
import copy
from datetime import UTC
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from kube_emulator import errors, validation
from tests.fakes import SCHEMAS
from tests.hostile import checks, tally
from tests.hostile import strategies as hostile
from tests.hostile.strategies import BATCH, DETERMINISTIC
from todo_operator.domain import resources

# Examples per kind (each BATCH manifests): RecurringTask has the most fields and rules, Reminder the fewest.
EXAMPLES = {"Task": 450, "RecurringTask": 550, "Reminder": 350}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_hostile_manifest_is_refused_naming_the_field_or_handled(
    kind: str, loop: asyncio.AbstractEventLoop
) -> None:
    outcomes: collections.Counter[str] = collections.Counter()

    @settings(DETERMINISTIC, max_examples=EXAMPLES[kind])
    @given(batch=st.lists(hostile.HOSTILE_MANIFESTS[kind], min_size=BATCH, max_size=BATCH))
    def each(batch: list[dict[str, Any]]) -> None:
        for manifest in batch:
            outcomes[checks.check_manifest(manifest, loop=loop).outcome] += 1

    each()
    tally.record(f"schema/{kind}", sum(outcomes.values()))
    # The strategies must reach every outcome, or they have gone blind to part of the problem.
    assert outcomes["refused"] > EXAMPLES[kind], outcomes
    assert outcomes["reconciled"] > EXAMPLES[kind] // 2, outcomes
    assert outcomes["invalid-spec"] > 0, outcomes


# --- negative controls: the same checks catch a schema, a validator or a reconcile that went wrong ----------

# Hypothesis warns when the failing example it reports (here on purpose) holds a 100,000-character string.
QUIET_ABOUT_HUGE_EXAMPLES = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


def _without_max_length(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: _without_max_length(value) for key, value in schema.items() if key != "maxLength"}
    if isinstance(schema, list):
        return [_without_max_length(item) for item in schema]
    return schema


def _naming_the_wrong_field(obj: dict[str, Any], schema: Any, *, old: Any) -> validation.Outcome:
    outcome = validation.admit(obj, schema, old=old)
    outcome.causes = [
        errors.Cause(cause.reason, cause.field.replace("spec.", "spec.x"), cause.message)
        for cause in outcome.causes
    ]
    return outcome


# How many examples a negative control may search. It stops at the first case that fails, so a
# generous budget costs nothing when the checks work; it is there because "derandomized" is not
# "the same cases everywhere": Hypothesis mixes the constants of every local module loaded into
# its draws, so the cases differ with the set of test modules collected (200 found a loose
# schema when tests/hostile ran alone and missed it beside the reminder tests).
SEARCH = 3000


def _runs_clean(check: Any, strategy: st.SearchStrategy[Any], *, examples: int = SEARCH) -> bool:
    @settings(DETERMINISTIC, max_examples=examples, phases=[Phase.generate])  # no shrinking: just find one
    @given(batch=st.lists(strategy, min_size=BATCH, max_size=BATCH))
    def each(batch: list[dict[str, Any]]) -> None:
        for manifest in batch:
            check(manifest)

    try:
        each()
    except Exception:  # an assertion of the checks, or a crash they let through
        return False
    return True


@QUIET_ABOUT_HUGE_EXAMPLES
def test_a_schema_looser_than_the_model_is_caught(loop: asyncio.AbstractEventLoop) -> None:
    loose = {kind: _without_max_length(schema) for kind, schema in SCHEMAS.items()}
    manifest = {"apiVersion": "todo.dev/v1alpha1", "kind": "Task", "metadata": {"name": "x"}}
    manifest["spec"] = {"title": "x" * 201, "owner": "alice@example.com"}
    assert checks.check_manifest(manifest, loop=loop).outcome == "refused"
    with pytest.raises(AssertionError, match=r"the CRD schema accepts spec\.title="):
        checks.check_manifest(manifest, loop=loop, schemas=loose)
    # And the generated cases find it on their own.
    assert not _runs_clean(
        lambda manifest: checks.check_manifest(manifest, loop=loop, schemas=loose),
        hostile.HOSTILE_MANIFESTS["Task"],
    )


@QUIET_ABOUT_HUGE_EXAMPLES
def test_a_refusal_naming_a_field_that_is_not_there_is_caught(loop: asyncio.AbstractEventLoop) -> None:
    assert not _runs_clean(
        lambda manifest: checks.check_manifest(manifest, loop=loop, admit_with=_naming_the_wrong_field),
        hostile.HOSTILE_MANIFESTS["RecurringTask"],
    )


@QUIET_ABOUT_HUGE_EXAMPLES
def test_a_crash_in_the_operator_is_caught(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fire_at as it was before it caught OverflowError: the hostile Tasks must find that again.
    def unguarded(entry: Any, *, due_at: Any) -> Any:
        if entry.at is not None:
            return entry.at.astimezone(UTC)
        if due_at is None:
            raise checks.timing.ReminderError("no dueAt")
        return (due_at - resources.parse_duration(entry.before)).astimezone(UTC)

    manifest = {"apiVersion": "todo.dev/v1alpha1", "kind": "Task", "metadata": {"name": "x"}}
    manifest["spec"] = {"title": "t", "owner": "a@example.com", "dueAt": "0001-01-01T00:00:00Z"}
    manifest["spec"]["reminders"] = [{"before": "1d"}]
    assert checks.check_manifest(copy.deepcopy(manifest), loop=loop).outcome == "reconciled"
    monkeypatch.setattr(checks.timing, "fire_at", unguarded)
    with pytest.raises(OverflowError):
        checks.check_manifest(manifest, loop=loop)
    # And the generated cases find it on their own.
    assert not _runs_clean(
        lambda manifest: checks.check_manifest(manifest, loop=loop), hostile.HOSTILE_TASK_TIMES
    )
