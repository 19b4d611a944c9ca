"""Pins of the python-dateutil behaviour the recurrence engine works around.

Each test states what dateutil (4.0.0 here) does today. When an upgrade
changes one, the test fails: then check whether the workaround in
``todo_operator/domain/recurrence/expansion.py`` or ``schedule.py`` is still
needed, and update both together.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dateutil import rrule

from todo_operator.domain.recurrence import Recurrence, ScheduleSpec, expansion


def test_weekly_bysetpos_uses_a_partial_first_week_issue_1398() -> None:
    # dateutil starts the first WEEKLY period at DTSTART (Wednesday), so BYSETPOS=1 picks Wednesday.
    found = list(
        rrule.rrule(
            rrule.WEEKLY, dtstart=datetime(2026, 1, 7, 9), byweekday=(0, 2, 4), bysetpos=1, wkst=0, count=2
        )
    )
    assert found == [datetime(2026, 1, 7, 9), datetime(2026, 1, 12, 9)]
    # Ours: whole weeks from WKST; that week's first (Monday 5th) is before the start.
    ours = Recurrence.compile(
        ScheduleSpec(rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=1", start=datetime(2026, 1, 7, 9))
    )
    assert [f"{occurrence:%d}" for occurrence in ours.first(2)] == ["12", "19"]


def test_nonexistent_local_times_and_duplicate_instants_issues_1425_1351() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    daily = list(rrule.rrule(rrule.DAILY, dtstart=datetime(2026, 3, 28, 2, 30, tzinfo=berlin), count=2))
    # 02:30 on 29 March does not exist in Berlin, yet dateutil returns it as a wall-clock time.
    assert daily[1].replace(tzinfo=None) == datetime(2026, 3, 29, 2, 30)
    assert daily[1].astimezone(UTC).astimezone(berlin).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)
    hourly = list(rrule.rrule(rrule.HOURLY, dtstart=datetime(2026, 3, 29, 1, tzinfo=berlin), count=3))
    # 02:00 (nonexistent) and 03:00 are the same instant: COUNT=3 yields two distinct instants.
    assert hourly[1].timestamp() == hourly[2].timestamp()


def test_libical_readings_differ_from_dateutil() -> None:
    week_20 = rrule.rrule(rrule.YEARLY, dtstart=datetime(2026, 1, 7, 9), byweekno=20, count=3)
    assert [day.day for day in week_20] == [11, 12, 13]  # all days; libical (and we): Wednesdays only
    every_other_week_1 = rrule.rrule(
        rrule.YEARLY, dtstart=datetime(2024, 1, 1, 9), interval=2, byweekno=1, byweekday=0, count=3
    )
    # Calendar years: 2024-12-30 (ISO 2025) is in, 2025-12-29 (ISO 2026, two years on) is out.
    assert list(every_other_week_1) == [
        datetime(2024, 1, 1, 9),
        datetime(2024, 12, 30, 9),
        datetime(2028, 1, 3, 9),
    ]


def test_dateutil_scans_to_year_9999_for_a_rule_that_never_matches() -> None:
    # Counted through our budget hook with an unlimited budget: one rebuild per scanned year.
    never = expansion._BoundedRRule(rrule.YEARLY, dtstart=datetime(2026, 1, 1), bymonth=2, bymonthday=30)
    assert list(never) == []
    assert (1 << 62) - never._rebuilds_left > 7_900


def test_the_budget_hook_stops_dateutil() -> None:
    # The engine's bound relies on dateutil reading rrule._byeaster once per month/year rebuild.
    never = expansion._BoundedRRule(rrule.DAILY, dtstart=datetime(2026, 1, 1), bymonth=2, bymonthday=30)
    limited = never.restarted(period_start=datetime(2026, 1, 1), rebuilds=12)
    try:
        next(iter(limited))
    except expansion._ScanExhausted:
        pass
    else:  # pragma: no cover - would mean dateutil no longer reads the hook
        raise AssertionError("dateutil found an occurrence of a rule that has none")


def test_restarting_a_clone_equals_building_a_new_rule() -> None:
    # The engine replaces dateutil's private _dtstart on a copy instead of rebuilding the rule.
    template = expansion._BoundedRRule(
        rrule.WEEKLY, dtstart=datetime(2026, 1, 5), byweekday=(1, 3), byhour=9, byminute=0, bysecond=0
    )
    restarted = template.restarted(period_start=datetime(2030, 6, 3), rebuilds=100)
    fresh = rrule.rrule(
        rrule.WEEKLY, dtstart=datetime(2030, 6, 3), byweekday=(1, 3), byhour=9, byminute=0, bysecond=0
    )
    assert list(itertools.islice(restarted, 5)) == list(itertools.islice(fresh, 5))


def test_dateutil_reads_the_hook_before_its_first_rebuild_then_once_per_month() -> None:
    # The work meter charges a month of calendar at every read after the first two
    # (expansion._BoundedRRule._charge_rebuild): `_iter` reads it, then its first rebuild.
    daily = expansion._BoundedRRule(rrule.DAILY, dtstart=datetime(2026, 1, 1))
    before = daily._rebuilds_left
    times = iter(daily)
    assert next(times) == datetime(2026, 1, 1)
    assert before - daily._rebuilds_left == 2
    assert list(itertools.takewhile(lambda day: day < datetime(2026, 3, 1), times))[-1].day == 28
    assert before - daily._rebuilds_left == 4  # February, and March once its first day was made
