"""The examples of RFC 5545 §3.8.5.3, with their published dates (DTSTART in America/New_York)."""

from __future__ import annotations

from datetime import datetime

import pytest

from todo_operator.domain.recurrence import Recurrence, ScheduleSpec


def wall_clock(rule: str, start: str, n: int, *, exdates: tuple[str, ...] = ()) -> list[str]:
    recurrence = Recurrence.compile(
        ScheduleSpec(
            rrule=rule,
            start=datetime.fromisoformat(start),
            time_zone="America/New_York",
            exdates=tuple(datetime.fromisoformat(exdate) for exdate in exdates),
        )
    )
    return [f"{occurrence:%Y-%m-%d %H:%M}" for occurrence in recurrence.first(n)]


def days(year_month: str, *day_numbers: int, time: str = "09:00") -> list[str]:
    return [f"{year_month}-{day:02d} {time}" for day in day_numbers]


# (description, DTSTART, RRULE, expected occurrences; when the rule is bounded the list is complete)
EXAMPLES = [
    ("daily for 10 occurrences", "1997-09-02T09:00", "FREQ=DAILY;COUNT=10", days("1997-09", *range(2, 12))),
    ("every other day", "1997-09-02T09:00", "FREQ=DAILY;INTERVAL=2", days("1997-09", 2, 4, 6, 8, 10, 12)),
    (
        "every 10 days, 5 occurrences",
        "1997-09-02T09:00",
        "FREQ=DAILY;INTERVAL=10;COUNT=5",
        days("1997-09", 2, 12, 22) + days("1997-10", 2, 12),
    ),
    (
        "weekly for 10 occurrences",
        "1997-09-02T09:00",
        "FREQ=WEEKLY;COUNT=10",
        days("1997-09", 2, 9, 16, 23, 30) + days("1997-10", 7, 14, 21, 28) + days("1997-11", 4),
    ),
    (
        "every other week on Monday, Wednesday and Friday until December 24, 1997",
        "1997-09-01T09:00",
        "FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=MO,WE,FR;UNTIL=19971224T000000Z",
        days("1997-09", 1, 3, 5, 15, 17, 19, 29)
        + days("1997-10", 1, 3, 13, 15, 17, 27, 29, 31)
        + days("1997-11", 10, 12, 14, 24, 26, 28)
        + days("1997-12", 8, 10, 12, 22),
    ),
    (
        "weekly on Tuesday and Thursday for five weeks",
        "1997-09-02T09:00",
        "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
        days("1997-09", 2, 4, 9, 11, 16, 18, 23, 25, 30) + days("1997-10", 2),
    ),
    (
        "monthly on the first Friday for 10 occurrences",
        "1997-09-05T09:00",
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        days("1997-09", 5)
        + days("1997-10", 3)
        + days("1997-11", 7)
        + days("1997-12", 5)
        + days("1998-01", 2)
        + days("1998-02", 6)
        + days("1998-03", 6)
        + days("1998-04", 3)
        + days("1998-05", 1)
        + days("1998-06", 5),
    ),
    (
        "every other month on the first and last Sunday, 10 occurrences",
        "1997-09-07T09:00",
        "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
        days("1997-09", 7, 28)
        + days("1997-11", 2, 30)
        + days("1998-01", 4, 25)
        + days("1998-03", 1, 29)
        + days("1998-05", 3, 31),
    ),
    (
        "monthly on the second-to-last Monday for 6 months",
        "1997-09-22T09:00",
        "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        days("1997-09", 22)
        + days("1997-10", 20)
        + days("1997-11", 17)
        + days("1997-12", 22)
        + days("1998-01", 19)
        + days("1998-02", 16),
    ),
    (
        "monthly on the third-to-the-last day of the month",
        "1997-09-28T09:00",
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        days("1997-09", 28)
        + days("1997-10", 29)
        + days("1997-11", 28)
        + days("1997-12", 29)
        + days("1998-01", 29)
        + days("1998-02", 26),
    ),
    (
        "monthly on the first and last day of the month for 10 occurrences",
        "1997-09-30T09:00",
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
        days("1997-09", 30)
        + days("1997-10", 1, 31)
        + days("1997-11", 1, 30)
        + days("1997-12", 1, 31)
        + days("1998-01", 1, 31)
        + days("1998-02", 1),
    ),
    (
        "every 18 months on the 10th thru 15th, 10 occurrences",
        "1997-09-10T09:00",
        "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15",
        days("1997-09", 10, 11, 12, 13, 14, 15) + days("1999-03", 10, 11, 12, 13),
    ),
    (
        "yearly in June and July for 10 occurrences",
        "1997-06-10T09:00",
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        [f"{year}-{month:02d}-10 09:00" for year in range(1997, 2002) for month in (6, 7)],
    ),
    (
        "every third year on the 1st, 100th and 200th day for 10 occurrences",
        "1997-01-01T09:00",
        "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        days("1997-01", 1)
        + days("1997-04", 10)
        + days("1997-07", 19)
        + days("2000-01", 1)
        + days("2000-04", 9)
        + days("2000-07", 18)
        + days("2003-01", 1)
        + days("2003-04", 10)
        + days("2003-07", 19)
        + days("2006-01", 1),
    ),
    (
        "every 20th Monday of the year",
        "1997-05-19T09:00",
        "FREQ=YEARLY;BYDAY=20MO",
        days("1997-05", 19) + days("1998-05", 18) + days("1999-05", 17),
    ),
    (
        "Monday of week number 20",
        "1997-05-12T09:00",
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        days("1997-05", 12) + days("1998-05", 11) + days("1999-05", 17),
    ),
    (
        "every Thursday in March",
        "1997-03-13T09:00",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
        days("1997-03", 13, 20, 27) + days("1998-03", 5, 12, 19, 26) + days("1999-03", 4, 11, 18, 25),
    ),
    (
        "the first Saturday that follows the first Sunday of the month",
        "1997-09-13T09:00",
        "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
        days("1997-09", 13)
        + days("1997-10", 11)
        + days("1997-11", 8)
        + days("1997-12", 13)
        + days("1998-01", 10)
        + days("1998-02", 7),
    ),
    (
        "US presidential election day",
        "1996-11-05T09:00",
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        days("1996-11", 5) + days("2000-11", 7) + days("2004-11", 2),
    ),
    (
        "the third instance of Tuesday, Wednesday or Thursday, for the next 3 months",
        "1997-09-04T09:00",
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        days("1997-09", 4) + days("1997-10", 7) + days("1997-11", 6),
    ),
    (
        "the second-to-last weekday of the month",
        "1997-09-29T09:00",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        days("1997-09", 29) + days("1997-10", 30) + days("1997-11", 27) + days("1997-12", 30),
    ),
    (
        # The RFC's own UNTIL (17:00Z = 13:00 EDT) contradicts its list (an erratum); 21:00Z matches it.
        "every 3 hours from 9:00 to 17:00 on one day",
        "1997-09-02T09:00",
        "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z",
        ["1997-09-02 09:00", "1997-09-02 12:00", "1997-09-02 15:00"],
    ),
    (
        "every 15 minutes for 6 occurrences",
        "1997-09-02T09:00",
        "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
        days("1997-09", 2, time="09:00")
        + days("1997-09", 2, time="09:15")
        + days("1997-09", 2, time="09:30")
        + days("1997-09", 2, time="09:45")
        + days("1997-09", 2, time="10:00")
        + days("1997-09", 2, time="10:15"),
    ),
    (
        "every hour and a half for 4 occurrences",
        "1997-09-02T09:00",
        "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
        ["1997-09-02 09:00", "1997-09-02 10:30", "1997-09-02 12:00", "1997-09-02 13:30"],
    ),
    (
        "every 20 minutes from 9:00 to 16:40 every day",
        "1997-09-02T09:00",
        "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
        [f"1997-09-02 {hour:02d}:{minute:02d}" for hour in range(9, 17) for minute in (0, 20, 40)]
        + ["1997-09-03 09:00"],
    ),
    (
        "WKST matters: weeks starting on Monday",
        "1997-08-05T09:00",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
        days("1997-08", 5, 10, 19, 24),
    ),
    (
        "WKST matters: weeks starting on Sunday",
        "1997-08-05T09:00",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
        days("1997-08", 5, 17, 19, 31),
    ),
    (
        "an invalid date (February 30) is ignored",
        "2007-01-15T09:00",
        "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
        days("2007-01", 15, 30) + days("2007-02", 15) + days("2007-03", 15, 30),
    ),
]


@pytest.mark.parametrize(
    ("start", "rule", "expected"),
    [pytest.param(start, rule, expected, id=description) for description, start, rule, expected in EXAMPLES],
)
def test_rfc5545_example(start: str, rule: str, expected: list[str]) -> None:
    bounded = "COUNT" in rule or "UNTIL" in rule
    found = wall_clock(rule, start, len(expected) + (5 if bounded else 0))
    assert found == expected


def test_daily_until_christmas_1997_has_113_occurrences() -> None:
    found = wall_clock("FREQ=DAILY;UNTIL=19971224T000000Z", "1997-09-02T09:00", 500)
    assert (len(found), found[0], found[-1]) == (113, "1997-09-02 09:00", "1997-12-23 09:00")


def test_every_day_in_january_for_3_years() -> None:
    found = wall_clock(
        "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA", "1998-01-01T09:00", 500
    )
    assert len(found) == 93
    assert found[:2] == ["1998-01-01 09:00", "1998-01-02 09:00"]
    assert found[-1] == "2000-01-31 09:00"


def test_every_friday_the_13th_with_the_start_excluded() -> None:
    found = wall_clock(
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "1997-09-02T09:00", 5, exdates=("1997-09-02T09:00",)
    )
    assert found == [
        "1998-02-13 09:00",
        "1998-03-13 09:00",
        "1998-11-13 09:00",
        "1999-08-13 09:00",
        "2000-10-13 09:00",
    ]


def test_weekly_dates_keep_wall_clock_time_across_the_autumn_change() -> None:
    recurrence = Recurrence.compile(
        ScheduleSpec(
            rrule="FREQ=WEEKLY;COUNT=10", start=datetime(1997, 9, 2, 9), time_zone="America/New_York"
        )
    )
    offsets = [occurrence.utcoffset() for occurrence in recurrence.first(10)]
    assert [int(offset.total_seconds() // 3600) for offset in offsets if offset is not None] == [-4] * 8 + [
        -5
    ] * 2
