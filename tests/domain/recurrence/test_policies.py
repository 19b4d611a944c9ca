"""The documented policies of docs/RECURRENCE.md, each with literal dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from todo_operator.domain.recurrence import Limits, Recurrence, ScheduleError, ScheduleSpec, next_due


def compile_rule(rule: str, start: str, zone: str = "UTC", **fields: object) -> Recurrence:
    return Recurrence.compile(
        ScheduleSpec(rrule=rule, start=datetime.fromisoformat(start), time_zone=zone, **fields)  # type: ignore[arg-type]
    )


def iso(recurrence: Recurrence, n: int) -> list[str]:
    return [occurrence.isoformat() for occurrence in recurrence.first(n)]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class TestTimeZones:
    @pytest.mark.parametrize(
        ("zone", "rule", "start", "expected"),
        [
            pytest.param(
                "Europe/Berlin",
                "FREQ=DAILY",
                "2026-03-28T02:30",
                ["2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"],
                id="Berlin spring-forward: 02:30 does not exist, moves forward by the hour",
            ),
            pytest.param(
                "Europe/Berlin",
                "FREQ=DAILY",
                "2026-10-24T02:30",
                ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
                id="Berlin fall-back: 02:30 happens twice, the first one counts",
            ),
            pytest.param(
                "America/New_York",
                "FREQ=DAILY",
                "2026-03-07T02:30",
                ["2026-03-07T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
                id="New York spring-forward",
            ),
            pytest.param(
                "America/New_York",
                "FREQ=DAILY",
                "2026-10-31T01:30",
                ["2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
                id="New York fall-back",
            ),
            pytest.param(
                "Australia/Sydney",
                "FREQ=DAILY",
                "2026-10-03T02:30",
                ["2026-10-03T02:30:00+10:00", "2026-10-04T03:30:00+11:00", "2026-10-05T02:30:00+11:00"],
                id="Sydney spring-forward (October)",
            ),
            pytest.param(
                "Australia/Sydney",
                "FREQ=DAILY",
                "2026-04-04T02:30",
                ["2026-04-04T02:30:00+11:00", "2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"],
                id="Sydney fall-back (April)",
            ),
            pytest.param(
                "Australia/Lord_Howe",
                "FREQ=DAILY",
                "2026-10-03T02:15",
                ["2026-10-03T02:15:00+10:30", "2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"],
                id="Lord Howe: a 30-minute gap moves 02:15 by 30 minutes",
            ),
            pytest.param(
                "Australia/Lord_Howe",
                "FREQ=DAILY",
                "2026-04-04T01:45",
                ["2026-04-04T01:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
                id="Lord Howe: a 30-minute fold keeps the first 01:45",
            ),
            pytest.param(
                "Europe/Berlin",
                "FREQ=HOURLY",
                "2026-03-29T00:00",
                [
                    "2026-03-29T00:00:00+01:00",
                    "2026-03-29T01:00:00+01:00",
                    "2026-03-29T03:00:00+02:00",
                    "2026-03-29T04:00:00+02:00",
                ],
                id="hourly over the gap: 02:00 becomes 03:00, which is produced once",
            ),
            pytest.param(
                "Europe/Berlin",
                "FREQ=HOURLY",
                "2026-10-25T00:00",
                [
                    "2026-10-25T00:00:00+02:00",
                    "2026-10-25T01:00:00+02:00",
                    "2026-10-25T02:00:00+02:00",
                    "2026-10-25T03:00:00+01:00",
                ],
                id="hourly over the fold: wall-clock hours, the repeated hour once",
            ),
            pytest.param(
                "Europe/Berlin",
                "FREQ=MINUTELY;INTERVAL=15",
                "2026-03-29T01:30",
                [
                    "2026-03-29T01:30:00+01:00",
                    "2026-03-29T01:45:00+01:00",
                    "2026-03-29T03:00:00+02:00",
                    "2026-03-29T03:15:00+02:00",
                    "2026-03-29T03:30:00+02:00",
                    "2026-03-29T03:45:00+02:00",
                    "2026-03-29T04:00:00+02:00",
                ],
                id="every 15 minutes over the gap: no duplicates, in order",
            ),
            pytest.param(
                "Australia/Lord_Howe",
                "FREQ=MINUTELY;INTERVAL=10;BYHOUR=2",
                "2026-10-04T00:00",
                [
                    "2026-10-04T02:30:00+11:00",
                    "2026-10-04T02:40:00+11:00",
                    "2026-10-04T02:50:00+11:00",
                    "2026-10-05T02:00:00+11:00",
                ],
                id="gap times that land on existing ones are produced once",
            ),
            pytest.param(
                "Australia/Sydney",
                "FREQ=WEEKLY;BYHOUR=0,2",
                "2020-10-04T03:00",
                ["2020-10-11T00:00:00+11:00", "2020-10-11T02:00:00+11:00"],
                # Found by the dateutil property test: 02:00 is in the gap and resolves to 03:00,
                # the start's instant, but on the wall clock it is before the start.
                id="a gap slot before the start is not an occurrence, though it resolves onto the start",
            ),
        ],
    )
    def test_wall_clock_policy(self, zone: str, rule: str, start: str, expected: list[str]) -> None:
        assert iso(compile_rule(rule, start, zone), len(expected)) == expected

    def test_count_counts_distinct_instants(self) -> None:
        # 02:00 and 03:00 are the same instant on the spring-forward day: 4 distinct instants.
        recurrence = compile_rule("FREQ=HOURLY;COUNT=4", "2026-03-29T00:00", "Europe/Berlin")
        assert iso(recurrence, 10) == [
            "2026-03-29T00:00:00+01:00",
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T04:00:00+02:00",
        ]

    def test_aware_start_is_that_instant(self) -> None:
        recurrence = compile_rule("FREQ=DAILY;COUNT=2", "2026-01-05T08:00+00:00", "Europe/Berlin")
        assert iso(recurrence, 2) == ["2026-01-05T09:00:00+01:00", "2026-01-06T09:00:00+01:00"]

    def test_exdate_as_wall_clock_or_instant(self) -> None:
        recurrence = compile_rule(
            "FREQ=DAILY;COUNT=4",
            "2026-01-05T09:00",
            "Europe/Berlin",
            exdates=(at("2026-01-06T09:00"), at("2026-01-07T08:00+00:00")),
        )
        # COUNT applies to the rule; exdates then remove occurrences (RFC 5545): 2 remain.
        assert iso(recurrence, 10) == ["2026-01-05T09:00:00+01:00", "2026-01-08T09:00:00+01:00"]

    def test_until_as_wall_clock_time_is_inclusive(self) -> None:
        recurrence = compile_rule(
            "FREQ=DAILY", "2026-01-05T09:00", "Europe/Berlin", until=at("2026-01-07T09:00")
        )
        assert len(recurrence.first(10)) == 3
        assert recurrence.rule_text == "FREQ=DAILY;UNTIL=20260107T080000Z"

    def test_until_as_a_date_in_the_rule_means_through_that_day(self) -> None:
        recurrence = compile_rule("FREQ=DAILY;UNTIL=20260107", "2026-01-05T09:00", "Europe/Berlin")
        assert [f"{occurrence:%d}" for occurrence in recurrence.first(10)] == ["05", "06", "07"]


class TestReadings:
    def test_yearly_bymonthday_without_bymonth_is_that_day_of_every_month(self) -> None:
        # RFC 5545 §3.3.10's table: BYMONTHDAY expands a YEARLY rule (rrule-temporal agrees).
        recurrence = compile_rule("FREQ=YEARLY;BYMONTHDAY=29", "2024-02-29T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(3)] == [
            "2024-02-29",
            "2024-03-29",
            "2024-04-29",
        ]

    def test_yearly_bymonthday_with_byhour_and_bysetpos_picks_from_the_whole_year(self) -> None:
        # Issue #18: refused as never matching while the 15th was read as the start's month only.
        # The year's set is the 15th of each month at 06:00 and 18:00: 24 times, of which
        # the 3rd is 15 February 06:00 and the 3rd from last 15 November 18:00.
        recurrence = compile_rule("FREQ=YEARLY;BYMONTHDAY=15;BYHOUR=6,18;BYSETPOS=3,-3", "2027-01-01T09:00")
        assert [f"{occurrence:%Y-%m-%d %H:%M}" for occurrence in recurrence.first(4)] == [
            "2027-02-15 06:00",
            "2027-11-15 18:00",
            "2028-02-15 06:00",
            "2028-11-15 18:00",
        ]

    def test_byweekno_with_interval_keeps_the_rules_calendar_years(self) -> None:
        # Issue #18: 1 January 2027 lies in week 53 of 2026; counting the rule's years from the
        # start's week-numbering year (2026) gave 2032, 2048… The rule's years are 2027, 2029…,
        # and of those only 2037, 2043 and 2065 have a week 53 (rrule-temporal agrees).
        recurrence = compile_rule("FREQ=YEARLY;BYWEEKNO=53;INTERVAL=2;BYDAY=TH", "2027-01-01T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(3)] == [
            "2037-12-31",
            "2043-12-31",
            "2065-12-31",
        ]

    def test_byweekno_without_byday_keeps_the_start_weekday(self) -> None:
        recurrence = compile_rule("FREQ=YEARLY;BYWEEKNO=20", "2026-01-07T09:00")  # a Wednesday
        assert [f"{occurrence:%Y-%m-%d %a}" for occurrence in recurrence.first(3)] == [
            "2026-05-13 Wed",
            "2027-05-19 Wed",
            "2028-05-17 Wed",
        ]

    def test_byweekno_with_interval_counts_week_numbering_years(self) -> None:
        # ISO week 1 of 2026 begins on Monday 2025-12-29: it belongs to 2026, two years after 2024.
        recurrence = compile_rule("FREQ=YEARLY;INTERVAL=2;BYWEEKNO=1;BYDAY=MO", "2024-01-01T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(3)] == [
            "2024-01-01",
            "2025-12-29",
            "2028-01-03",
        ]

    def test_a_negative_week_keeps_its_days_in_the_december_before(self) -> None:
        # Week -53 of 2009 (a year of 53 weeks) is its week 1, which begins on Monday 29 December 2008.
        recurrence = compile_rule("FREQ=YEARLY;BYWEEKNO=2,-53;BYDAY=TU,WE,FR", "2008-05-17T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(4)] == [
            "2008-12-30",
            "2008-12-31",
            "2009-01-02",
            "2009-01-06",
        ]

    def test_week_53_is_only_in_years_that_have_one(self) -> None:
        # 1 January 2039 is in week 52 of 2038 (dateutil calls it week 53); 2 January 2044 is in
        # week 53 of 2043.
        recurrence = compile_rule("FREQ=YEARLY;BYWEEKNO=53;BYDAY=SA", "2038-06-01T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(2)] == [
            "2044-01-02",
            "2049-01-02",
        ]

    def test_a_week_of_the_year_before_the_start_is_not_the_rules(self) -> None:
        # 1 January 2033 is in the last week of 2032; the rule's first year is 2033.
        recurrence = compile_rule("FREQ=YEARLY;BYWEEKNO=-1", "2033-01-01T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(2)] == [
            "2033-12-31",
            "2034-12-30",
        ]

    def test_bysetpos_with_byweekno_is_refused_rather_than_answered_wrongly(self) -> None:
        with pytest.raises(ScheduleError, match="BYSETPOS together with BYWEEKNO is not supported"):
            compile_rule("FREQ=YEARLY;BYWEEKNO=10,52;BYDAY=SA,FR;BYSETPOS=1", "2026-01-07T09:00")

    def test_weekly_bysetpos_counts_whole_weeks_from_wkst(self) -> None:
        # The first week's first day (Monday 5th) is before the start: that week has no occurrence.
        recurrence = compile_rule("FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=1", "2026-01-07T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(3)] == [
            "2026-01-12",
            "2026-01-19",
            "2026-01-26",
        ]

    def test_start_not_matching_the_rule_is_not_an_occurrence(self) -> None:
        recurrence = compile_rule("FREQ=WEEKLY;BYDAY=FR", "2026-01-07T16:00")  # a Wednesday
        assert recurrence.first(1)[0] == datetime(2026, 1, 9, 16, tzinfo=UTC)


class TestMonthEndsAndLeapYears:
    def test_monthly_on_the_31st_skips_short_months(self) -> None:
        recurrence = compile_rule("FREQ=MONTHLY", "2026-01-31T09:00")
        assert [f"{occurrence:%m-%d}" for occurrence in recurrence.first(4)] == [
            "01-31",
            "03-31",
            "05-31",
            "07-31",
        ]

    def test_last_day_of_the_month(self) -> None:
        recurrence = compile_rule("FREQ=MONTHLY;BYMONTHDAY=-1", "2024-01-31T09:00")
        assert [f"{occurrence:%m-%d}" for occurrence in recurrence.first(3)] == ["01-31", "02-29", "03-31"]

    def test_last_day_of_the_year_in_a_leap_year(self) -> None:
        recurrence = compile_rule("FREQ=YEARLY;BYYEARDAY=-1,60", "2024-01-01T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(4)] == [
            "2024-02-29",
            "2024-12-31",
            "2025-03-01",
            "2025-12-31",
        ]

    def test_yearly_from_february_29_keeps_to_leap_years(self) -> None:
        recurrence = compile_rule("FREQ=YEARLY", "2024-02-29T09:00")
        assert [f"{occurrence:%Y}" for occurrence in recurrence.first(3)] == ["2024", "2028", "2032"]

    def test_last_weekday_of_the_month_with_bysetpos(self) -> None:
        recurrence = compile_rule("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "2026-01-01T09:00")
        assert [f"{occurrence:%m-%d}" for occurrence in recurrence.first(3)] == ["01-30", "02-27", "03-31"]


_EVERY_SECOND_OF_THE_DAY = ";".join(
    f"{part}={','.join(str(value) for value in range(count))}"
    for part, count in (("BYHOUR", 24), ("BYMINUTE", 60), ("BYSECOND", 60))
)


class TestLimitsAndErrors:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"rrule": "FREQ=MONTHLY;BYMONTHDAY=40"}, "BYMONTHDAY must be between -31 and 31, got 40"),
            ({"rrule": "FREQ=DAILY", "time_zone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
            ({"rrule": "FREQ=SECONDLY"}, "FREQ=SECONDLY is not supported"),
            ({"rrule": "FREQ=MINUTELY"}, "at least 5 minutes apart"),
            ({"rrule": "FREQ=MINUTELY;INTERVAL=4"}, "at least 5 minutes apart"),
            ({"rrule": "FREQ=MINUTELY;BYYEARDAY=318;BYHOUR=21,22"}, "has them 1 minute apart in every hour"),
            ({"rrule": "FREQ=MINUTELY;BYMINUTE=0,1"}, "09:00:00 and 2026-01-01 09:01:00"),
            ({"rrule": "FREQ=HOURLY;BYMINUTE=0,1"}, "at least 5 minutes apart"),
            ({"rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0,2"}, "09:00:00 and 09:02:00"),
            ({"rrule": "FREQ=DAILY;BYHOUR=23,0;BYMINUTE=59,1"}, "at least 5 minutes apart"),
            ({"rrule": "FREQ=DAILY;" + _EVERY_SECOND_OF_THE_DAY}, "the rule has 86400 times of day"),
            ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "produces no occurrence within 30 years"),
            ({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "produces no occurrence"),
            ({"rrule": "FREQ=MONTHLY;INTERVAL=12;BYMONTH=3"}, "produces no occurrence"),
            ({"rrule": "FREQ=HOURLY;INTERVAL=2;BYHOUR=4"}, "can never produce an occurrence"),
            ({"rrule": "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2"}, "than one weekly period has"),
            ({"rrule": "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=32"}, "than one monthly period has"),
            ({"rrule": "FREQ=WEEKLY;BYDAY=MO,TU;BYSETPOS=3;BYMONTH=1"}, "than one weekly period has"),
            ({"rrule": "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6"}, "produces no occurrence"),  # scanned
            ({"rrule": "FREQ=YEARLY;INTERVAL=10000;BYWEEKNO=48;BYYEARDAY=334"}, "produces no occurrence"),
            ({"rrule": "FREQ=MINUTELY;INTERVAL=5;BYSECOND=0;BYSETPOS=2"}, "BYSETPOS asks for more"),
            ({"rrule": "FREQ=HOURLY;BYMINUTE=0,30;BYSETPOS=3,-3"}, "than one hourly period has"),
            ({"rrule": "FREQ=DAILY;INTERVAL=7;BYDAY=TU"}, "produces no occurrence"),  # from a Thursday
            ({"rrule": "FREQ=DAILY;COUNT=3", "count": 4}, "count is given both"),
            ({"rrule": "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"}, "COUNT and UNTIL cannot both be given"),
            ({"rrule": "FREQ=DAILY", "count": 3, "until": at("2027-01-01T00:00")}, "cannot both be given"),
            ({"rrule": "FREQ=DAILY;COUNT=10001"}, "COUNT must be between 1 and 10000"),
            ({"rrule": "FREQ=DAILY", "until": at("2200-01-01T00:00")}, "within 100 years of the start"),
            ({"rrule": "FREQ=DAILY", "until": at("2025-01-01T00:00")}, "before the start"),
            ({"rrule": "FREQ=WEEKLY;BYDAY=1MO"}, "needs FREQ=MONTHLY or FREQ=YEARLY"),
            ({"rrule": "FREQ=WEEKLY;BYMONTHDAY=1"}, "BYMONTHDAY cannot be used with FREQ=WEEKLY"),
            ({"rrule": "FREQ=MONTHLY;BYWEEKNO=1"}, "BYWEEKNO can only be used with FREQ=YEARLY"),
            ({"rrule": "FREQ=DAILY;BYSETPOS=1"}, "BYSETPOS needs another BYxxx part"),
            ({"rrule": "FREQ=DAILY;FOO=1"}, "unknown rule part 'FOO'"),
            ({"rrule": "FREQ=DAILY;FREQ=WEEKLY"}, "FREQ is given twice"),
            ({"rrule": "BYDAY=MO"}, "the rule has no FREQ"),
            ({"rrule": "FREQ=DAILY;INTERVAL=0"}, "INTERVAL must be between 1 and 10000, got 0"),
            ({"rrule": "FREQ=DAILY;BYDAY=XX"}, "BYDAY entries look like MO, 1MO or -1FR"),
            ({"rrule": "FREQ=DAILY;UNTIL=2026"}, "UNTIL must look like"),
            ({"rrule": "FREQ=DAILY", "every": "daily"}, "either rrule or every"),
            ({}, "needs rrule or every"),
            ({"every": "hourly"}, "every must be one of daily, weekly, monthly, yearly"),
            (
                {"rrule": "FREQ=DAILY;COUNT=2", "exdates": (at("2026-01-01T09:00"), at("2026-01-02T09:00"))},
                "excluded",
            ),
            ({"rrule": "FREQ=DAILY;UNTIL=20260101T080000Z"}, "before the start"),
            ({"rrule": "FREQ=WEEKLY;BYDAY=FR;UNTIL=20260102T000000Z"}, "before its first occurrence"),
        ],
    )
    def test_refused_with_a_readable_message(self, fields: dict[str, object], message: str) -> None:
        with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
            Recurrence.compile(ScheduleSpec(start=datetime(2026, 1, 1, 9), **fields))  # type: ignore[arg-type]

    def test_rule_length_is_limited(self) -> None:
        rule = "FREQ=YEARLY;BYYEARDAY=" + ",".join(str(day) for day in range(1, 200))
        with pytest.raises(ScheduleError, match="characters long; at most 512 are allowed"):
            compile_rule(rule, "2026-01-01T09:00")

    def test_the_spacing_sample_reaches_as_far_as_the_search_horizon(self) -> None:
        # 23:59 on 29 February and 00:00 on 1 March: a close pair only leap years bring.
        rule = "FREQ=HOURLY;BYMONTH=2,3;BYMONTHDAY=29,1;BYHOUR=23,0;BYMINUTE=59,0"
        # Four years after the start (the next leap year): within the horizon, refused.
        with pytest.raises(ScheduleError, match="2032-02-29 23:59:00 and 2032-03-01 00:00:00"):
            compile_rule(rule, "2028-03-02T00:00")
        # Eight years after (2100 is no leap year): past the 4-year horizon of a sub-daily rule, not
        # looked for. (Sampling 128 occurrences here meant scanning decades minute by minute; a pair
        # once in eight years is not the flood min_spacing guards against.)
        assert iso(compile_rule(rule, "2096-03-02T00:00"), 2) == [
            "2096-03-29T00:00:00+00:00",
            "2096-03-29T00:59:00+00:00",
        ]

    def test_limits_can_be_tightened(self) -> None:
        limits = Limits(min_spacing=timedelta(hours=2))
        with pytest.raises(ScheduleError, match="at least 2 hours apart"):
            Recurrence.compile(ScheduleSpec(rrule="FREQ=HOURLY", start=datetime(2026, 1, 1)), limits=limits)

    def test_every_is_shown_back_as_a_rule(self) -> None:
        recurrence = Recurrence.compile(
            ScheduleSpec(every="weekly", interval=2, start=datetime(2026, 1, 5, 9), count=3)
        )
        assert recurrence.rule_text == "FREQ=WEEKLY;INTERVAL=2;COUNT=3"

    def test_rrule_prefix_and_lower_case_are_accepted(self) -> None:
        recurrence = compile_rule("RRULE:freq=weekly;byday=mo,we;", "2026-01-05T09:00")
        assert recurrence.rule_text == "FREQ=WEEKLY;BYDAY=MO,WE"

    def test_same_count_in_rule_and_spec_is_fine(self) -> None:
        assert compile_rule("FREQ=DAILY;COUNT=3", "2026-01-05T09:00", count=3).count == 3


class TestQueries:
    def test_next_after_is_strict_and_first_at_or_after_is_not(self) -> None:
        recurrence = compile_rule("FREQ=DAILY", "2026-01-05T09:00", "Europe/Berlin")
        slot = at("2026-01-07T09:00+01:00")
        assert recurrence.next_after(slot) == at("2026-01-08T09:00+01:00")
        assert recurrence.first_at_or_after(slot) == slot

    def test_between_is_half_open(self) -> None:
        recurrence = compile_rule("FREQ=DAILY", "2026-01-05T09:00")
        found = recurrence.between(at("2026-01-06T09:00+00:00"), at("2026-01-08T09:00+00:00"))
        assert found == [at("2026-01-06T09:00+00:00"), at("2026-01-07T09:00+00:00")]

    def test_next_after_far_from_the_start(self) -> None:
        recurrence = compile_rule("FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,TH", "2016-01-05T09:00", "Europe/Berlin")
        assert recurrence.next_after(at("2026-05-10T12:00+00:00")) == at("2026-05-12T09:00+02:00")

    def test_count_ends_the_schedule_even_when_asked_much_later(self) -> None:
        recurrence = compile_rule("FREQ=DAILY;COUNT=3", "2026-01-05T09:00")
        assert recurrence.next_after(at("2026-01-06T10:00+00:00")) == at("2026-01-07T09:00+00:00")
        assert recurrence.next_after(at("2026-01-07T09:00+00:00")) is None
        assert recurrence.next_after(at("2036-01-07T09:00+00:00")) is None

    def test_naive_instants_are_a_programming_error(self) -> None:
        recurrence = compile_rule("FREQ=DAILY", "2026-01-05T09:00")
        with pytest.raises(ValueError, match="aware"):
            recurrence.next_after(datetime(2026, 1, 6))

    def test_results_are_in_the_schedule_zone(self) -> None:
        recurrence = compile_rule("FREQ=DAILY", "2026-01-05T09:00", "Asia/Tokyo")
        found = recurrence.next_after(at("2026-01-05T00:00+00:00"))
        assert found is not None
        assert (found.isoformat(), str(found.tzinfo)) == ("2026-01-06T09:00:00+09:00", "Asia/Tokyo")


class TestAnchors:
    weekly_monday = ScheduleSpec(
        rrule="FREQ=WEEKLY;BYDAY=MO", start=datetime(2026, 1, 5, 9), time_zone="Europe/Berlin"
    )

    @pytest.mark.parametrize(
        ("completed_at", "expected"),
        [
            pytest.param("2026-01-04T12:00+01:00", "2026-01-12T09:00:00+01:00", id="early: the next slot"),
            pytest.param("2026-01-07T12:00+01:00", "2026-01-12T09:00:00+01:00", id="on time"),
            pytest.param(
                "2026-01-28T12:00+01:00", "2026-02-02T09:00:00+01:00", id="late: missed slots skipped"
            ),
        ],
    )
    def test_schedule_anchor(self, completed_at: str, expected: str) -> None:
        due = next_due(
            Recurrence.compile(self.weekly_monday),
            anchor="schedule",
            previous_due=at("2026-01-05T09:00+01:00"),
            completed_at=at(completed_at),
            occurrences_so_far=1,
        )
        assert due is not None
        assert due.isoformat() == expected

    def test_schedule_anchor_count_is_part_of_the_rule(self) -> None:
        recurrence = compile_rule("FREQ=DAILY;COUNT=3", "2026-01-01T09:00")
        common = {"anchor": "schedule", "previous_due": at("2026-01-01T09:00+00:00"), "occurrences_so_far": 1}
        assert next_due(recurrence, completed_at=at("2026-01-01T10:00+00:00"), **common) == at(  # type: ignore[arg-type]
            "2026-01-02T09:00+00:00"
        )
        # Completed after the last slot: the missed ones are not made up, the schedule has ended.
        assert next_due(recurrence, completed_at=at("2026-01-05T10:00+00:00"), **common) is None  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("every", "interval", "start", "completed_at", "expected"),
        [
            pytest.param(
                "daily",
                2,
                "2026-01-05T09:00",
                "2026-01-10T22:00+01:00",
                "2026-01-12T09:00:00+01:00",
                id="daily",
            ),
            pytest.param(
                "weekly",
                1,
                "2026-01-05T09:00",
                "2026-01-07T08:00+01:00",
                "2026-01-14T09:00:00+01:00",
                id="weekly",
            ),
            pytest.param(
                "monthly",
                1,
                "2026-01-31T09:00",
                "2026-01-31T10:00+01:00",
                "2026-02-28T09:00:00+01:00",
                id="clamped",
            ),
            pytest.param(
                "yearly",
                1,
                "2024-02-29T09:00",
                "2024-02-29T10:00+01:00",
                "2025-02-28T09:00:00+01:00",
                id="yearly",
            ),
            pytest.param(
                "daily",
                1,
                "2026-03-28T02:30",
                "2026-03-28T03:00+01:00",
                "2026-03-29T03:30:00+02:00",
                id="into a gap",
            ),
        ],
    )
    def test_completion_anchor_with_every(
        self, every: str, interval: int, start: str, completed_at: str, expected: str
    ) -> None:
        recurrence = Recurrence.compile(
            ScheduleSpec(every=every, interval=interval, start=at(start), time_zone="Europe/Berlin")  # type: ignore[arg-type]
        )
        due = next_due(
            recurrence,
            anchor="completion",
            previous_due=at("2020-01-01T00:00+00:00"),
            completed_at=at(completed_at),
            occurrences_so_far=1,
        )
        assert due is not None
        assert due.isoformat() == expected

    @pytest.mark.parametrize(
        ("rule", "completed_at", "expected"),
        [
            pytest.param(
                "FREQ=WEEKLY;BYDAY=MO,WE,FR", "2026-01-13T10:00+01:00", "2026-01-14T09:00:00+01:00", id="Tue"
            ),
            pytest.param(
                "FREQ=WEEKLY;BYDAY=MO,WE,FR", "2026-01-12T08:00+01:00", "2026-01-14T09:00:00+01:00", id="Mon"
            ),
            pytest.param(
                "FREQ=DAILY;INTERVAL=3", "2026-01-12T10:00+01:00", "2026-01-15T09:00:00+01:00", id="3 days"
            ),
            pytest.param(
                "FREQ=MONTHLY;BYMONTHDAY=15", "2026-03-10T10:00+01:00", "2026-03-15T09:00:00+01:00", id="15th"
            ),
        ],
    )
    def test_completion_anchor_restarts_the_rule_on_the_completion_day(
        self, rule: str, completed_at: str, expected: str
    ) -> None:
        recurrence = compile_rule(rule, "2026-01-05T09:00", "Europe/Berlin")
        due = next_due(
            recurrence,
            anchor="completion",
            previous_due=at("2026-01-05T09:00+01:00"),
            completed_at=at(completed_at),
            occurrences_so_far=1,
        )
        assert due is not None
        assert due.isoformat() == expected

    def test_completion_anchor_count_counts_spawned_occurrences(self) -> None:
        recurrence = compile_rule("FREQ=DAILY;COUNT=3", "2026-01-01T09:00")
        common = {"anchor": "completion", "previous_due": at("2026-01-01T09:00+00:00")}
        late = at("2026-03-01T10:00+00:00")
        assert next_due(recurrence, completed_at=late, occurrences_so_far=2, **common) == at(  # type: ignore[arg-type]
            "2026-03-02T09:00+00:00"
        )
        assert next_due(recurrence, completed_at=late, occurrences_so_far=3, **common) is None  # type: ignore[arg-type]

    def test_completion_anchor_respects_until_and_exdates(self) -> None:
        recurrence = Recurrence.compile(
            ScheduleSpec(
                every="daily",
                start=datetime(2026, 1, 1, 9),
                until=datetime(2026, 1, 10, 9),
                exdates=(datetime(2026, 1, 6, 9),),
            )
        )
        common = {
            "anchor": "completion",
            "previous_due": at("2026-01-01T09:00+00:00"),
            "occurrences_so_far": 1,
        }
        assert next_due(recurrence, completed_at=at("2026-01-05T10:00+00:00"), **common) == at(  # type: ignore[arg-type]
            "2026-01-07T09:00+00:00"
        )
        assert next_due(recurrence, completed_at=at("2026-01-10T10:00+00:00"), **common) is None  # type: ignore[arg-type]


class TestRareRules:
    def test_a_rare_but_possible_rule_is_accepted_and_found(self) -> None:
        # 29 February on a Monday: 18 years after the start, then 28 years later.
        recurrence = compile_rule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "2026-01-01T09:00")
        assert [f"{occurrence:%Y-%m-%d}" for occurrence in recurrence.first(2)] == [
            "2044-02-29",
            "2072-02-29",
        ]

    def test_beyond_the_horizon_the_schedule_ends(self) -> None:
        recurrence = Recurrence.compile(
            ScheduleSpec(rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", start=datetime(2026, 1, 1, 9)),
            limits=Limits(search_horizon=timedelta(days=366 * 20)),
        )
        assert recurrence.first(5) == [at("2044-02-29T09:00+00:00")]  # 2072 is 28 years further


class TestRdates:
    def days(self, recurrence: Recurrence, n: int = 10) -> list[str]:
        return [f"{occurrence:%m-%d %H:%M}" for occurrence in recurrence.first(n)]

    def test_rdates_join_the_rules_occurrences_in_order(self) -> None:
        recurrence = compile_rule(
            "FREQ=WEEKLY;BYDAY=MO", "2026-12-07T09:00", "Europe/Berlin", rdates=(datetime(2026, 12, 10, 18),)
        )
        assert self.days(recurrence, 3) == ["12-07 09:00", "12-10 18:00", "12-14 09:00"]
        assert recurrence.next_after(at("2026-12-07T09:00+01:00")) == at("2026-12-10T18:00+01:00")

    def test_count_and_until_bound_the_rule_only(self) -> None:
        late = datetime(2027, 3, 1, 9)
        counted = compile_rule("FREQ=WEEKLY;BYDAY=MO;COUNT=2", "2026-12-07T09:00", rdates=(late,))
        assert self.days(counted) == ["12-07 09:00", "12-14 09:00", "03-01 09:00"]
        bounded = compile_rule(
            "FREQ=WEEKLY;BYDAY=MO", "2026-12-07T09:00", until=datetime(2026, 12, 14, 9), rdates=(late,)
        )
        assert self.days(bounded) == ["12-07 09:00", "12-14 09:00", "03-01 09:00"]

    def test_an_exdate_removes_an_rdate_and_a_shared_time_is_one_occurrence(self) -> None:
        recurrence = compile_rule(
            "FREQ=WEEKLY;BYDAY=MO;COUNT=2",
            "2026-12-07T09:00",
            rdates=(datetime(2026, 12, 7, 9), datetime(2026, 12, 9, 9)),
            exdates=(datetime(2026, 12, 9, 9),),
        )
        assert self.days(recurrence) == ["12-07 09:00", "12-14 09:00"]

    def test_an_rdate_before_the_start_is_refused(self) -> None:
        with pytest.raises(ScheduleError, match="rdate 2026-12-01T09:00:00"):
            compile_rule("FREQ=DAILY", "2026-12-07T09:00", rdates=(datetime(2026, 12, 1, 9),))

    def test_a_rule_without_occurrences_is_refused_even_with_rdates(self) -> None:
        with pytest.raises(ScheduleError, match="produces no occurrence"):
            compile_rule(
                "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "2026-12-07T09:00", rdates=(datetime(2027, 1, 1),)
            )

    def test_under_completion_anchor_the_next_rdate_comes_first_when_earlier(self) -> None:
        recurrence = compile_rule(
            "FREQ=WEEKLY;BYDAY=MO", "2026-12-07T09:00", rdates=(datetime(2026, 12, 9, 18),)
        )
        common = {
            "anchor": "completion",
            "previous_due": at("2026-12-07T09:00+00:00"),
            "occurrences_so_far": 1,
        }
        early = next_due(recurrence, completed_at=at("2026-12-07T10:00+00:00"), **common)  # type: ignore[arg-type]
        assert early == at("2026-12-09T18:00+00:00")
        later = next_due(recurrence, completed_at=at("2026-12-10T10:00+00:00"), **common)  # type: ignore[arg-type]
        assert later == at("2026-12-14T09:00+00:00")
