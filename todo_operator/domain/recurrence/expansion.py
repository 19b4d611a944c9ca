"""Wall-clock expansion of a rule: python-dateutil, bounded and made explicit.

python-dateutil's ``rrule`` does the RFC 5545 set arithmetic (BYxxx expansion
and limiting, BYSETPOS, week numbers) well, so it does that here. This module
fixes what it gets wrong or leaves open, and nothing else:

* **Unbounded search.** dateutil checks UNTIL only when it has a result in
  hand, so a rule that never matches (``BYMONTH=2;BYMONTHDAY=30``) is scanned
  day by day up to the year 9999 — seconds of CPU for one call. We bound every
  scan: dateutil rebuilds its per-year/per-month masks at least once a month
  of scanned calendar, and each rebuild reads ``rrule._byeaster``; our
  subclass turns that read into a budget that runs out after the search
  horizon without an occurrence (the budget is renewed by every occurrence).
  ``tests/unit/test_recurrence_dateutil.py`` pins this hook. Two cases are
  refused before any scan: BYSETPOS positions no period of the rule can have
  (:func:`set_positions_never_match`; the budget counts months, and a
  MINUTELY rule would try millions of periods within it), and impossible
  dates (:func:`days_never_match`: a yearly check, instead of scanning the
  horizon day by day).
* **Cost growing with the past.** ``rrule(...).after(now)`` walks from
  DTSTART, so a daily rule started ten years ago costs 3,650 iterations. We
  restart the expansion at the period (year, month, week, day, hour, minute)
  that contains the wanted moment, aligned with INTERVAL, after making every
  piece of information dateutil would take from DTSTART explicit (time of
  day, weekday, day of month, month). The restart clones a prepared rule and
  only replaces its DTSTART, which is much cheaper than building a new one.
* **Partial first week (dateutil issue #1398).** dateutil starts the first
  WEEKLY period at DTSTART instead of at the week start, so ``BYSETPOS``
  counts only the rest of that week. Restarting at period boundaries (the
  same mechanism) makes every period whole; results before the real start are
  dropped by the caller.
* **libical readings** where RFC 5545 leaves room: BYWEEKNO without BYDAY
  keeps the start's weekday (dateutil yields all seven days); YEARLY with
  BYMONTHDAY but no BYMONTH keeps the start's month (dateutil uses every
  month); BYWEEKNO with INTERVAL counts week-numbering years (dateutil counts
  calendar years, so the days of week 1 that fall in December belong to the
  wrong year).

Time zones are not handled here at all: dateutil is given naive wall-clock
times and returns naive wall-clock times (it would otherwise emit nonexistent
local times across DST, dateutil issues #1425/#1351). The caller resolves
them into instants with one policy (see :mod:`.schedule`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Final, Literal

from dateutil import rrule as dateutil_rrule

from todo_operator.domain.recurrence import rules

# dateutil's own frequency numbers, by our names.
_DATEUTIL_FREQUENCY: Final[dict[rules.Frequency, Literal[0, 1, 2, 3, 4, 5]]] = {
    "YEARLY": dateutil_rrule.YEARLY,
    "MONTHLY": dateutil_rrule.MONTHLY,
    "WEEKLY": dateutil_rrule.WEEKLY,
    "DAILY": dateutil_rrule.DAILY,
    "HOURLY": dateutil_rrule.HOURLY,
    "MINUTELY": dateutil_rrule.MINUTELY,
}
# The shortest a period of each frequency can be; sizes the scan budget.
_SHORTEST_PERIOD: Final[dict[rules.Frequency, timedelta]] = {
    "YEARLY": timedelta(days=365),
    "MONTHLY": timedelta(days=28),
    "WEEKLY": timedelta(weeks=1),
    "DAILY": timedelta(days=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
}
# The periods of fixed length, in wall-clock time.
_FIXED_PERIOD: Final[dict[rules.Frequency, timedelta]] = {
    "WEEKLY": timedelta(weeks=1),
    "DAILY": timedelta(days=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
}
# Expansion stops here: dateutil ends at 9999 and instants near it overflow.
LAST_YEAR: Final = 9998


class _ScanExhausted(Exception):
    """The bounded scan looked as far as it may without finding an occurrence."""


class _BoundedRRule(dateutil_rrule.rrule):
    """A dateutil rule whose scan stops after a budget of calendar rebuilds.

    ``_iterinfo.rebuild`` runs whenever dateutil's iteration enters a new month
    or year (and once at its start), and reads ``rrule._byeaster`` each time.
    BYEASTER is a dateutil extension we never use, so the attribute is free to
    become the budget counter.
    """

    _dtstart: datetime  # dateutil's private DTSTART, replaced by restarted()
    _rebuilds_left: int = 1 << 62

    # dateutil stores a plain attribute here; the property is the budget hook (see the class docstring).
    @property
    def _byeaster(self) -> None:
        self._rebuilds_left -= 1
        if self._rebuilds_left < 0:
            raise _ScanExhausted
        return None

    @_byeaster.setter
    def _byeaster(self, value: object) -> None:
        if value is not None:  # pragma: no cover - we never pass byeaster
            raise ValueError("BYEASTER is not supported")

    def restarted(self, *, period_start: datetime, rebuilds: int) -> _BoundedRRule:
        """A copy that starts at another (aligned) period; cheaper than building a new rule."""
        clone = object.__new__(_BoundedRRule)
        clone.__dict__.update(self.__dict__)
        clone._dtstart = period_start
        clone._rebuilds_left = rebuilds
        return clone

    def renew_budget(self, rebuilds: int) -> None:
        self._rebuilds_left = rebuilds


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExplicitRule:
    """A rule with everything it would take from its start written out (libical's readings)."""

    frequency: rules.Frequency
    interval: int
    week_start: int
    by_second: tuple[int, ...]
    by_minute: tuple[int, ...]
    by_hour: tuple[int, ...]
    by_day: tuple[rules.WeekdayRule, ...]
    by_month_day: tuple[int, ...]
    by_year_day: tuple[int, ...]
    by_week_number: tuple[int, ...]
    by_month: tuple[int, ...]
    by_set_position: tuple[int, ...]
    # BYWEEKNO with INTERVAL > 1: dateutil runs every year and we keep one
    # week-numbering year in this many (dateutil would count calendar years).
    week_numbering_year_interval: int = 1

    def times_of_day(self) -> list[tuple[int, int, int]]:
        """The (hour, minute, second) combinations a day-or-longer rule produces, sorted."""
        return sorted((h, m, s) for h in self.by_hour for m in self.by_minute for s in self.by_second)


def make_explicit(rule: rules.Rule, *, start_wall: datetime) -> ExplicitRule:
    """Write out what dateutil (and libical) would take from the start, so any restart means the same."""
    rank = rule.frequency_rank
    by_second = rule.by_second or (start_wall.second,)
    by_minute = rule.by_minute or ((start_wall.minute,) if rank < rules.FREQUENCIES.index("MINUTELY") else ())
    by_hour = rule.by_hour or ((start_wall.hour,) if rank < rules.FREQUENCIES.index("HOURLY") else ())
    by_day, by_month_day, by_month = rule.by_day, rule.by_month_day, rule.by_month
    start_weekday = (rules.WeekdayRule(weekday=start_wall.weekday()),)
    no_day_parts = not (rule.by_week_number or rule.by_year_day or rule.by_month_day or rule.by_day)
    if rule.frequency == "YEARLY":
        if no_day_parts:
            by_month = by_month or (start_wall.month,)
            by_month_day = (start_wall.day,)
        elif rule.by_month_day and not (rule.by_month or rule.by_week_number or rule.by_year_day):
            by_month = (start_wall.month,)  # libical: "yearly on the 29th" stays in the start's month
        if rule.by_week_number and not (rule.by_day or rule.by_month_day or rule.by_year_day):
            by_day = start_weekday  # libical: week 20 means the start's weekday of week 20
    elif rule.frequency == "MONTHLY" and no_day_parts:
        by_month_day = (start_wall.day,)
    elif rule.frequency == "WEEKLY" and no_day_parts:
        by_day = start_weekday
    iso_years = rule.frequency == "YEARLY" and bool(rule.by_week_number) and rule.interval > 1
    return ExplicitRule(
        frequency=rule.frequency,
        interval=1 if iso_years else rule.interval,
        week_start=0 if rule.week_start is None else rule.week_start,
        by_second=by_second,
        by_minute=by_minute,
        by_hour=by_hour,
        by_day=by_day,
        by_month_day=by_month_day,
        by_year_day=rule.by_year_day,
        by_week_number=rule.by_week_number,
        by_month=by_month,
        by_set_position=rule.by_set_position,
        week_numbering_year_interval=rule.interval if iso_years else 1,
    )


def week_numbering_year(day: date, *, week_start: int) -> int:
    """The year a week belongs to: the one holding its fourth day (ISO 8601 when weeks start on Monday)."""
    first_day_of_week = day - timedelta(days=(day.weekday() - week_start) % 7)
    return (first_day_of_week + timedelta(days=3)).year


class WallClockExpansion:
    """The naive wall-clock times a rule produces, restartable anywhere at a cost independent of the past."""

    def __init__(self, *, rule: ExplicitRule, start_wall: datetime, search_horizon: timedelta) -> None:
        self.rule = rule
        self._start_period = self._period_floor(start_wall)
        self._start_numbering_year = week_numbering_year(start_wall.date(), week_start=rule.week_start)
        rebuild_every = max(_SHORTEST_PERIOD[rule.frequency] * rule.interval, timedelta(days=28))
        self._rebuilds = math.ceil(search_horizon / rebuild_every) + 2
        try:
            self._template = _BoundedRRule(
                _DATEUTIL_FREQUENCY[rule.frequency],
                dtstart=self._start_period,
                interval=rule.interval,
                wkst=rule.week_start,
                bysecond=rule.by_second or None,
                byminute=rule.by_minute or None,
                byhour=rule.by_hour or None,
                byweekday=[_dateutil_weekday(day) for day in rule.by_day] or None,
                bymonthday=rule.by_month_day or None,
                byyearday=rule.by_year_day or None,
                byweekno=rule.by_week_number or None,
                bymonth=rule.by_month or None,
                bysetpos=rule.by_set_position or None,
            )
        except ValueError as error:
            # dateutil refuses BYHOUR/BYMINUTE values that INTERVAL can never reach.
            raise rules.ScheduleError(f"the rule can never produce an occurrence ({error})") from None

    def wall_times_from(self, wall: datetime) -> Iterator[datetime]:
        """Wall-clock times at or after ``wall``, in order.

        The expansion restarts at the aligned period holding ``wall`` (or the
        start's period), so it may find times before ``wall``: they are
        skipped here. Without the start's own filtering: times before the
        start of the schedule are the caller's to drop. Ends when the search
        horizon passes without an occurrence, or at :data:`LAST_YEAR`.
        """
        if wall.year > LAST_YEAR:
            return
        period_start = self._aligned_period_start(wall)
        expansion = self._template.restarted(period_start=period_start, rebuilds=self._rebuilds)
        times = iter(expansion)
        numbering_interval = self.rule.week_numbering_year_interval
        while True:
            try:
                wall_time = next(times)
            except (StopIteration, _ScanExhausted):
                return
            except ValueError:
                # dateutil: "Invalid combination of interval and byhour resulting in empty rule".
                return
            if wall_time.year > LAST_YEAR:
                return
            if numbering_interval > 1:
                year = week_numbering_year(wall_time.date(), week_start=self.rule.week_start)
                if (year - self._start_numbering_year) % numbering_interval:
                    # Not an occurrence, so it does not renew the budget: otherwise a rule
                    # that never matches in its own years (INTERVAL=10000) is scanned to 9998.
                    continue
            expansion.renew_budget(self._rebuilds)
            if wall_time < wall:
                continue
            yield wall_time

    def _aligned_period_start(self, wall: datetime) -> datetime:
        start = self._start_period
        if wall <= start:
            return start
        floor = self._period_floor(wall)
        periods = self._periods_between(start, floor)
        interval = self.rule.interval
        aligned = self._add_periods(start, periods - periods % interval)
        if aligned == floor and self.rule.frequency == "WEEKLY" and not self.rule.by_set_position:
            # Without BYSETPOS a partial first week means the same (dateutil drops the days before
            # its DTSTART, which are before `wall` anyway) and saves expanding them.
            return datetime(wall.year, wall.month, wall.day)  # noqa: DTZ001 - wall-clock time
        return aligned

    def _period_floor(self, wall: datetime) -> datetime:
        frequency = self.rule.frequency
        if frequency == "YEARLY":
            return datetime(wall.year, 1, 1)  # noqa: DTZ001 - wall-clock time, naive on purpose
        if frequency == "MONTHLY":
            return datetime(wall.year, wall.month, 1)  # noqa: DTZ001 - wall-clock time
        if frequency == "WEEKLY":
            day = wall.date() - timedelta(days=(wall.weekday() - self.rule.week_start) % 7)
            return datetime(day.year, day.month, day.day)  # noqa: DTZ001 - wall-clock time
        if frequency == "DAILY":
            return datetime(wall.year, wall.month, wall.day)  # noqa: DTZ001 - wall-clock time
        if frequency == "HOURLY":
            return wall.replace(minute=0, second=0, microsecond=0)
        return wall.replace(second=0, microsecond=0)

    def _periods_between(self, earlier: datetime, later: datetime) -> int:
        frequency = self.rule.frequency
        if frequency == "YEARLY":
            return later.year - earlier.year
        if frequency == "MONTHLY":
            return (later.year - earlier.year) * 12 + later.month - earlier.month
        # Naive subtraction counts wall-clock time, which is what dateutil iterates in.
        span = later - earlier
        if frequency == "WEEKLY":
            return span.days // 7
        if frequency == "DAILY":
            return span.days
        if frequency == "HOURLY":
            return int(span.total_seconds()) // 3600
        return int(span.total_seconds()) // 60

    def _add_periods(self, period_start: datetime, periods: int) -> datetime:
        frequency = self.rule.frequency
        if frequency == "YEARLY":
            return period_start.replace(year=period_start.year + periods)
        if frequency == "MONTHLY":
            year, month_index = divmod(period_start.month - 1 + periods, 12)
            return period_start.replace(year=period_start.year + year, month=month_index + 1)
        return period_start + _FIXED_PERIOD[frequency] * periods


def set_positions_never_match(rule: ExplicitRule) -> bool:
    """Whether BYSETPOS asks only for positions that no period of the rule can have.

    A DAILY, HOURLY or MINUTELY period always holds the same number of
    candidates (the times of day, of the hour, of the minute); a WEEKLY one at
    most its BYDAY weekdays (never numbered in a WEEKLY rule) times the times
    of day, a MONTHLY one at most 31 days' worth. Positions beyond that bound
    can never match, so refusing them is exact. It matters beyond the message:
    dateutil would try every single period of the horizon (a MINUTELY rule:
    millions of periods, seconds of CPU; a WEEKLY one: 1,500 weeks, about
    10 ms), and our scan budget counts months, not periods. YEARLY periods
    (366 days) hold every position BYSETPOS can name.
    """
    if not rule.by_set_position or rule.frequency == "YEARLY":
        return False
    per_period = len(rule.by_second)
    if rule.frequency != "MINUTELY":
        per_period *= len(rule.by_minute)
    if rule.frequency not in ("HOURLY", "MINUTELY"):
        per_period *= len(rule.by_hour)
    if rule.frequency == "WEEKLY":
        per_period *= len(rule.by_day) or 7
    elif rule.frequency == "MONTHLY":
        per_period *= 31
    return all(abs(position) > per_period for position in rule.by_set_position)


def days_never_match(rule: ExplicitRule, *, start_wall: datetime, search_horizon: timedelta) -> bool:
    """Whether the rule's day filters alone exclude every day within the horizon: a fast refusal.

    A rule that never matches costs a scan of the whole horizon, period by
    period (tens of milliseconds for MINUTELY). The days a rule can use are
    a subset of the days that pass its BYMONTH, BYMONTHDAY, BYYEARDAY and
    (unnumbered) BYDAY filters; a YEARLY rule with just those filters finds
    them one year per step, so impossible dates (30 February) are refused in
    about a millisecond. Interval and BYSETPOS effects still take the full scan.
    """
    if any(day.ordinal is not None for day in rule.by_day) or rule.by_week_number:
        return False  # numbered weekdays mean something else in a YEARLY rule
    if not (rule.by_month_day or rule.by_year_day):
        return False  # every month has every weekday: BYMONTH and BYDAY alone always match
    years = math.ceil(search_horizon / _SHORTEST_PERIOD["YEARLY"]) + 1
    days = _BoundedRRule(
        dateutil_rrule.YEARLY,
        dtstart=datetime(start_wall.year, 1, 1),  # noqa: DTZ001 - wall-clock time
        bymonth=rule.by_month or None,
        bymonthday=rule.by_month_day or None,
        byyearday=rule.by_year_day or None,
        byweekday=[day.weekday for day in rule.by_day] or None,
        byhour=0,
        byminute=0,
        bysecond=0,
    ).restarted(period_start=datetime(start_wall.year, 1, 1), rebuilds=years + 2)  # noqa: DTZ001
    try:
        return next(iter(days), None) is None
    except _ScanExhausted:
        return True


def _dateutil_weekday(day: rules.WeekdayRule) -> dateutil_rrule.weekday:
    return dateutil_rrule.weekday(day.weekday, day.ordinal)
