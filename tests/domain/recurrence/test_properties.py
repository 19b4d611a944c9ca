"""Properties of the engine over generated schedules (hypothesis; a few seconds in total).

The oracle is python-dateutil itself, run the slow way (from the start, with
naive wall-clock times) on rules where it is right, followed by our
documented resolution policy: the engine's restarts, bounds and DST handling
must not change the answer.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule as dateutil_rrule
from hypothesis import given, settings
from hypothesis import strategies as st

from todo_operator.domain.recurrence import Recurrence, ScheduleError, ScheduleSpec, next_due

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
FREQUENCIES = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"]
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def rules(draw: st.DrawFn) -> str:
    frequency = draw(st.sampled_from(FREQUENCIES))
    parts = [f"FREQ={frequency}", f"INTERVAL={draw(st.integers(1, 3))}"]
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3, unique=True))
        parts.append("BYDAY=" + ",".join(days))
    if frequency in ("YEARLY", "MONTHLY") and draw(st.booleans()):
        month_days = draw(
            st.lists(st.sampled_from([1, 15, 28, 29, 30, 31, -1]), min_size=1, max_size=2, unique=True)
        )
        parts.append("BYMONTHDAY=" + ",".join(map(str, month_days)))
    if frequency == "YEARLY" and draw(st.booleans()):
        parts.append(
            "BYMONTH="
            + ",".join(map(str, draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))))
        )
    if frequency != "HOURLY" and draw(st.booleans()):
        # Hours around the DST changes of the zones above.
        parts.append(
            "BYHOUR="
            + ",".join(
                map(
                    str,
                    draw(st.lists(st.sampled_from([0, 1, 2, 3, 9, 23]), min_size=1, max_size=3, unique=True)),
                )
            )
        )
    return ";".join(parts)


starts = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda moment: moment.replace(second=0, microsecond=0, minute=moment.minute // 15 * 15)
)


def compile_or_none(rule: str, start: datetime, zone: str, **fields: object) -> Recurrence | None:
    try:
        return Recurrence.compile(ScheduleSpec(rrule=rule, start=start, time_zone=zone, **fields))  # type: ignore[arg-type]
    except ScheduleError:
        return None  # e.g. BYMONTHDAY=30 with BYMONTH=2; refusals are tested elsewhere


def oracle(rule: str, start: datetime, zone: ZoneInfo, n: int) -> list[datetime]:
    """dateutil from the start in wall-clock time, then the documented policy: fold=0, sorted, distinct."""
    naive = dateutil_rrule.rrulestr(rule, dtstart=start)
    instants: list[datetime] = []
    start_instant = start.replace(tzinfo=zone).astimezone(UTC)
    for wall in naive.xafter(start, count=3 * n + 10, inc=True):
        instant = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: gap moves forward, fold picks the first
        if instant >= start_instant:
            instants.append(instant)
    return sorted(set(instants))[:n]


@PROPERTY_SETTINGS
@given(rule=rules(), start=starts, zone=st.sampled_from(ZONES))
def test_occurrences_match_dateutil_resolved_by_the_policy(rule: str, start: datetime, zone: str) -> None:
    recurrence = compile_or_none(rule, start, zone)
    # The rules drawn here have no BYWEEKNO, where our reading differs from dateutil's.
    if recurrence is None:
        return
    ours = [occurrence.astimezone(UTC) for occurrence in recurrence.first(25)]
    assert ours == oracle(rule, start, ZoneInfo(zone), len(ours))


@PROPERTY_SETTINGS
@given(rule=rules(), start=starts, zone=st.sampled_from(ZONES))
def test_strictly_increasing_in_zone_and_never_in_a_gap(rule: str, start: datetime, zone: str) -> None:
    recurrence = compile_or_none(rule, start, zone)
    if recurrence is None:
        return
    found = recurrence.first(40)
    assert all(earlier < later for earlier, later in itertools.pairwise(found))
    for occurrence in found:
        assert occurrence.tzinfo == recurrence.zone
        wall = occurrence.replace(tzinfo=None)
        # The wall-clock time exists: it survives a round trip through UTC.
        assert (
            wall.replace(tzinfo=recurrence.zone)
            .astimezone(UTC)
            .astimezone(recurrence.zone)
            .replace(tzinfo=None)
            == wall
        )


@PROPERTY_SETTINGS
@given(
    rule=rules(),
    start=starts,
    zone=st.sampled_from(ZONES),
    offset=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000)),
)
def test_next_after_is_the_first_of_between_and_agrees_with_a_walk_from_the_start(
    rule: str, start: datetime, zone: str, offset: timedelta
) -> None:
    recurrence = compile_or_none(rule, start, zone)
    if recurrence is None:
        return
    # An instant, in UTC: the start (in its zone) plus a timedelta is wall-clock arithmetic in
    # Python, which can land in a DST gap (02:30 on a spring-forward day), and two datetimes of
    # one zone compare by wall clock, so 03:00 EDT would count as after the same instant's 02:00.
    moment = recurrence.start.astimezone(UTC) + offset
    following = recurrence.next_after(moment)
    window = recurrence.between(moment + timedelta(seconds=1), moment + timedelta(days=4 * 366))
    if window:
        assert following == window[0]
    # Independent of the engine's restarts: dateutil walks from the start.
    zone_info = ZoneInfo(zone)
    naive = dateutil_rrule.rrulestr(rule, dtstart=start)
    moment_wall = moment.astimezone(zone_info).replace(tzinfo=None)
    candidates = sorted(
        instant
        for wall in naive.xafter(moment_wall - timedelta(days=2), count=200)
        if (instant := wall.replace(tzinfo=zone_info).astimezone(UTC)) > moment
        and instant >= recurrence.start
    )
    if candidates and candidates[0] < moment + timedelta(days=366):
        assert following == candidates[0]
    if following is not None:
        assert following > moment
        assert recurrence.first_at_or_after(following) == following
        previous = recurrence.between(recurrence.start, following)
        assert not previous or previous[-1] <= moment


@PROPERTY_SETTINGS
@given(
    rule=rules(),
    start=starts,
    zone=st.sampled_from(ZONES),
    count=st.integers(1, 12),
    excluded=st.lists(st.integers(0, 11), max_size=3, unique=True),
)
def test_count_and_exdates(rule: str, start: datetime, zone: str, count: int, excluded: list[int]) -> None:
    plain = compile_or_none(rule, start, zone)
    if plain is None:
        return
    first = plain.first(count)
    exdates = tuple(first[index] for index in excluded if index < len(first))
    if len(exdates) == len(first):
        return  # everything excluded: refused at compile, tested elsewhere
    bounded = compile_or_none(rule, start, zone, count=count, exdates=exdates)
    assert bounded is not None
    assert bounded.first(count + 5) == [occurrence for occurrence in first if occurrence not in exdates]
    assert bounded.next_after(first[-1]) is None


@PROPERTY_SETTINGS
@given(rule=rules(), start=starts, zone=st.sampled_from(ZONES), days=st.integers(1, 800))
def test_until_is_respected(rule: str, start: datetime, zone: str, days: int) -> None:
    until = start + timedelta(days=days)
    recurrence = compile_or_none(rule, start, zone, until=until)
    if recurrence is None:
        return
    found = recurrence.first(30)
    assert found
    assert all(occurrence <= until.replace(tzinfo=ZoneInfo(zone)) for occurrence in found)


@PROPERTY_SETTINGS
@given(
    rule=rules(),
    start=starts,
    zone=st.sampled_from(ZONES),
    late=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
)
def test_schedule_anchor_gives_an_occurrence_after_both(
    rule: str, start: datetime, zone: str, late: timedelta
) -> None:
    recurrence = compile_or_none(rule, start, zone)
    if recurrence is None:
        return
    previous = recurrence.first(1)[0]
    completed = previous + late
    due = next_due(
        recurrence, anchor="schedule", previous_due=previous, completed_at=completed, occurrences_so_far=1
    )
    assert due is not None
    assert due > completed
    assert recurrence.first_at_or_after(due) == due
    assert recurrence.between(completed + timedelta(seconds=1), due) == []
