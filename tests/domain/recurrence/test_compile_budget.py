"""The compile budget: a rule whose occurrences cost too much to find is refused, by counted work.

``Limits.max_compile_work`` counts work units as dateutil steps through the
calendar (``expansion.WorkMeter``), never time: nothing here reads a clock,
and every count below is the same on any machine. Before the budget the
costly rules here took 0.1 to 4 s to compile, or (COUNT) compiled at once and
then took up to minutes on their first query.
"""

from __future__ import annotations

import pathlib
import re
from datetime import datetime, timedelta

import pytest

from tests import ROOT
from todo_operator.domain.recurrence import (
    Limits,
    Recurrence,
    ScheduleError,
    ScheduleSpec,
    ScheduleTooCostly,
    rules,
)

START = datetime(2026, 1, 1, 9)  # wall-clock time in ZONE, a Thursday
ZONE = "Europe/Berlin"
BUDGET = Limits().max_compile_work
UNLIMITED = Limits(max_compile_work=1 << 60)
_EVERY_MINUTE = ",".join(str(minute) for minute in range(60))

# Valid or not, each costs far more CPU to check than the budget allows (times before the budget,
# on the 2-core build machine). Other tests use them by these names.
WORST_VALID_RULE = "FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57"  # 2 a year: 0.2 s
COSTLY_RULES = {
    WORST_VALID_RULE: "two a year, stepped through minute by minute for the 4-year spacing sample",
    "FREQ=MINUTELY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0": "once a month, minute by minute: 0.1 s",
    "FREQ=MINUTELY;INTERVAL=7;BYHOUR=23;BYMONTH=2;BYMONTHDAY=29": "leap days only: 0.1 s",
    "FREQ=YEARLY;COUNT=10000": "its 10,000th occurrence is in the year 9998: 0.3 s on the first query",
    f"{WORST_VALID_RULE};COUNT=20": "its 20th occurrence is 10 years out: 0.5 s on the first query",
    f"FREQ=HOURLY;BYYEARDAY=366;BYMINUTE={_EVERY_MINUTE};BYSECOND={_EVERY_MINUTE}": (
        "3,600 times an hour, written out for every day until the first leap day: 4 s, then refused"
        " as too dense"
    ),
}
# The costliest ordinary rules found must keep fitting, with room to spare.
HEADROOM = 0.7


def spec(rule: str) -> ScheduleSpec:
    return ScheduleSpec(rrule=rule, start=START, time_zone=ZONE)


@pytest.mark.parametrize("rule", list(COSTLY_RULES), ids=list(COSTLY_RULES.values()))
def test_a_costly_rule_is_refused_as_too_costly_and_the_work_stops_at_the_budget(rule: str) -> None:
    with pytest.raises(ScheduleTooCostly) as refused:
        Recurrence.compile(spec(rule))
    message = str(refused.value)
    assert message.startswith("the rule FREQ=")
    assert "is too costly to compute" in message
    assert f"more than {BUDGET:,} work units (about 75 ms of CPU)" in message
    assert "use a coarser FREQ" in message
    assert isinstance(refused.value, ScheduleError)  # reported wherever a ScheduleError is
    # The expansion stopped at the first month boundary past the budget (charged a month at a time).
    assert BUDGET < refused.value.work < 2 * BUDGET


def test_a_costly_valid_rule_compiles_with_a_bigger_budget() -> None:
    # The refusal is the budget's, not a new validity rule: the same rule, more budget, compiles.
    rule = "FREQ=MINUTELY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0"
    roomy = Limits(max_compile_work=10 * BUDGET)
    schedule = Recurrence.compile(spec(rule), limits=roomy)
    assert [f"{moment:%m-%d %H:%M}" for moment in schedule.first(2)] == ["01-01 09:00", "02-01 09:00"]
    assert BUDGET < schedule.compile_work < roomy.max_compile_work


def test_the_work_is_counted_not_timed() -> None:
    # The same rule is charged the same, to the unit, on every run (and so on every replica).
    rule = "FREQ=MINUTELY;INTERVAL=59;BYMONTH=2;BYHOUR=3;BYMINUTE=7"
    assert len({Recurrence.compile(spec(rule)).compile_work for _ in range(3)}) == 1
    refusals = []
    for _ in range(2):
        with pytest.raises(ScheduleTooCostly) as refused:
            Recurrence.compile(spec(WORST_VALID_RULE))
        refusals.append(refused.value.work)
    assert refusals[0] == refusals[1]


def test_count_is_listed_by_compile_under_the_budget() -> None:
    # COUNT=10000 on a daily rule, the costliest ordinary rule known, fits.
    daily = Recurrence.compile(spec("FREQ=DAILY;COUNT=10000"))
    assert daily.compile_work < BUDGET * HEADROOM
    last = daily.between(
        datetime.fromisoformat("2053-05-18T00:00+02:00"), datetime.fromisoformat("2053-05-20T00:00+02:00")
    )
    assert [f"{moment:%Y-%m-%d}" for moment in last] == ["2053-05-18"]
    assert daily.next_after(last[0]) is None


def _rules_written_down() -> list[str]:
    """Every rule in the examples, the user docs and the tests, except the costly ones above."""
    sources = [
        *ROOT.glob("examples/*.yaml"),
        ROOT / "README.md",
        ROOT / "docs" / "RECURRENCE.md",
        ROOT / "docs" / "API.md",
        *(path for path in (ROOT / "tests").rglob("*.py") if path.name != pathlib.Path(__file__).name),
    ]
    found: set[str] = set()
    for path in sources:
        found.update(match.rstrip(";,") for match in re.findall(r"FREQ=[A-Z0-9=;,+-]+", path.read_text()))
    costly = {_canonical(rule) for rule in COSTLY_RULES}
    return sorted(rule for rule in found if _canonical(rule) not in costly)


def _canonical(rule: str) -> str:
    """The rule as the engine shows it back (messages quote it so), or as written if it is invalid."""
    try:
        return rules.parse_rule(rule, limits=Limits()).text()
    except ScheduleError:
        return rule


WRITTEN_DOWN = _rules_written_down()


def test_rules_are_found_in_the_examples_docs_and_tests() -> None:
    assert len(WRITTEN_DOWN) > 100
    assert "FREQ=MONTHLY;BYDAY=-1FR" in WRITTEN_DOWN  # the README's
    assert "FREQ=HOURLY;BYMONTH=2,3;BYMONTHDAY=29,1;BYHOUR=23,0;BYMINUTE=59,0" in WRITTEN_DOWN


@pytest.mark.parametrize("rule", WRITTEN_DOWN)
def test_every_rule_written_down_that_is_valid_fits_the_budget_with_room(rule: str) -> None:
    try:
        work = Recurrence.compile(spec(rule), limits=UNLIMITED).compile_work
    except ScheduleError:
        return  # refused for what it is (too dense, never matching, ...), with or without a budget
    assert work < BUDGET * HEADROOM, f"{rule} takes {work:,} work units of {BUDGET:,}"
    Recurrence.compile(spec(rule))  # and with the default budget


def test_the_longest_scan_in_the_tests_fits_from_its_own_start() -> None:
    # The sub-daily rule with the longest scan in the tests, from the start its test uses.
    rule = "FREQ=HOURLY;BYMONTH=2,3;BYMONTHDAY=29,1;BYHOUR=23,0;BYMINUTE=59,0"
    assert Recurrence.compile(ScheduleSpec(rrule=rule, start=datetime(2096, 3, 2))).compile_work < BUDGET
    # And a schedule refused for another reason keeps that reason, not "too costly".
    with pytest.raises(ScheduleError, match="2032-02-29 23:59:00 and 2032-03-01 00:00:00"):
        Recurrence.compile(ScheduleSpec(rrule=rule, start=datetime(2028, 3, 2)))


def test_the_budget_can_be_tightened() -> None:
    with pytest.raises(ScheduleTooCostly, match="more than 1,000 work units"):
        Recurrence.compile(spec("FREQ=DAILY;COUNT=100"), limits=Limits(max_compile_work=1_000))
    assert (
        Recurrence.compile(spec("FREQ=DAILY;COUNT=100"), limits=Limits(max_compile_work=10_000)).count == 100
    )


def test_queries_after_compile_are_not_metered() -> None:
    # The budget is the compile's: a compiled schedule, shared by threads, carries no meter.
    schedule = Recurrence.compile(spec("FREQ=WEEKLY;BYDAY=MO"))
    far = START + timedelta(days=365 * 900)
    assert schedule.next_after(far.replace(tzinfo=schedule.zone)) is not None


# -- a preview's listing: the same budget ------------------------------------------------------

SPARSE_VALID_RULE = "FREQ=MINUTELY;INTERVAL=59;BYMONTH=2;BYHOUR=3;BYMINUTE=7"  # a few times each February


def test_listing_far_apart_occurrences_is_bounded_by_the_same_budget() -> None:
    # Compiles cheaply, but 100 occurrences span two centuries of minutes (0.3 s before).
    schedule = Recurrence.compile(spec(SPARSE_VALID_RULE))
    assert schedule.compile_work < BUDGET * HEADROOM
    assert len(schedule.upcoming(schedule.start, count=10, inclusive=True)) == 10
    with pytest.raises(
        ScheduleTooCostly, match=r"^listing 100 occurrences of the rule .* ask for fewer"
    ) as refused:
        schedule.upcoming(schedule.start, count=100, inclusive=True)
    assert BUDGET < refused.value.work < 2 * BUDGET


@pytest.mark.parametrize(
    ("rule", "zone"),
    [
        ("FREQ=DAILY", "Europe/Berlin"),
        ("FREQ=HOURLY;INTERVAL=5", "Europe/Berlin"),  # across the spring-forward gap
        ("FREQ=MONTHLY;BYDAY=-1FR;COUNT=7", "America/New_York"),
        ("FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=1", "UTC"),
    ],
)
def test_upcoming_lists_what_next_after_finds_one_by_one(rule: str, zone: str) -> None:
    schedule = Recurrence.compile(ScheduleSpec(rrule=rule, start=datetime(2026, 3, 20, 9), time_zone=zone))
    after = datetime.fromisoformat("2026-03-27T00:00:00+00:00")
    for inclusive in (False, True):
        expected: list[datetime] = []
        moment = schedule.first_at_or_after(after) if inclusive else schedule.next_after(after)
        while moment is not None and len(expected) < 12:
            expected.append(moment)
            moment = schedule.next_after(moment)
        assert schedule.upcoming(after, count=12, inclusive=inclusive) == expected
