"""Hostile schedules straight into the recurrence engine: a readable ScheduleError, or sane answers.

The CRD schema and the model keep most nonsense away from the engine, but
the engine is also reached by the REST API and ``todo-operator preview``, and
it is where "valid but absurd" is decided (a rule that never matches, one too
dense, dates the calendar cannot hold). Every generated ``ScheduleSpec`` —
rules from known bombs and from valid and absurd parts, dates from the year
1 to 9999 with and without offsets, real and impossible zones — is either
refused with a ScheduleError or gives occurrences that are aware, ordered,
in the schedule's zone and never before its start; and no answer takes long
enough to look like a loop.
"""

from __future__ import annotations

import collections
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile import checks, tally
from tests.hostile import strategies as hostile
from tests.hostile.strategies import BATCH, DETERMINISTIC
from todo_operator.domain import occurrences, recurrence, resources

EXAMPLES = 300
# Far above any legitimate compile (the slowest valid rules known take a few hundred ms, see
# docs/PERFORMANCE.md): a case this slow is a loop, or a bomb that got through.
LOOKS_LIKE_A_LOOP = 5.0


def check_schedule(spec: recurrence.ScheduleSpec) -> str:
    started = time.perf_counter()
    try:
        schedule = recurrence.Recurrence.compile(spec)
        first = occurrences.first_due(schedule, created_at=checks.NOW)
    except recurrence.ScheduleError as error:
        message = str(error)
        assert message, "an empty error message"
        assert "\n" not in message, message
        outcome = "refused"
    else:
        # The canonical rule goes into status.rule, which the CRD limits.
        assert len(schedule.rule_text) <= resources.MAX_RULE_LENGTH + 64, schedule.rule_text
        outcome = "ended" if first is None else "scheduled"
        if first is not None:
            assert first.tzinfo is not None
            assert first >= max(schedule.start, checks.NOW)
            following = schedule.next_after(first)
            assert following is None or following > first, (first, following)
            for anchor in ("schedule", "completion"):
                due = recurrence.next_due(
                    schedule, anchor=anchor, previous_due=first, completed_at=first, occurrences_so_far=1
                )
                assert due is None or due > first, (anchor, first, due)
    elapsed = time.perf_counter() - started
    assert elapsed < LOOKS_LIKE_A_LOOP, f"{elapsed:.1f} s for {spec}"
    return outcome


def test_every_hostile_schedule_is_refused_readably_or_answered_sanely() -> None:
    outcomes: collections.Counter[str] = collections.Counter()

    @settings(DETERMINISTIC, max_examples=EXAMPLES)
    @given(batch=st.lists(hostile.schedule_spec(), min_size=BATCH, max_size=BATCH))
    def each(batch: list[recurrence.ScheduleSpec]) -> None:
        for spec in batch:
            outcomes[check_schedule(spec)] += 1

    each()
    tally.record("schedule/ScheduleSpec", sum(outcomes.values()))
    assert outcomes["refused"] > EXAMPLES, outcomes
    assert outcomes["scheduled"] > EXAMPLES // 4, outcomes
