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
  ``tests/domain/recurrence/test_dateutil_pins.py`` pins this hook. Two cases are
  refused before any scan: BYSETPOS positions no period of the rule can have
  (:func:`set_positions_never_match`; the budget counts months, and a
  MINUTELY rule would try millions of periods within it), and impossible
  dates (:func:`days_never_match`: a yearly check, instead of scanning the
  horizon day by day).
* **No limit on the work.** The scan budget above ends a *search*, and is
  renewed by every occurrence; a valid rule can still cost a lot to expand
  (a MINUTELY rule with day filters is stepped through minute by minute, and
  listing its COUNT-th occurrence can take minutes). A :class:`WorkMeter`
  counts the work of a compile (or of a list of upcoming occurrences) in
  units of about 0.1 µs of CPU, from the calendar dateutil has stepped
  through (each INTERVAL-th minute, hour or day of it a *candidate*, weighted
  by what dateutil does per candidate of that FREQ) and the times it
  produced, and stops it when its budget is spent. Counted, not timed: the
  same rule gets the same answer on every replica, on every run and under
  any load, which a timer cannot promise.
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
* **Readings** where RFC 5545 leaves room or dateutil strays from it:
  BYWEEKNO without BYDAY keeps the start's weekday (as libical and
  rrule-temporal; dateutil yields all seven days); BYWEEKNO with INTERVAL
  keeps the weeks numbered in the rule's years, the start's calendar year and
  every INTERVAL-th after it (dateutil keeps the days that fall in those
  calendar years, so the days of week 1 that fall in December belong to the
  wrong year). YEARLY with BYMONTHDAY but no BYMONTH means that day of every
  month (RFC 5545's table: BYMONTHDAY expands a YEARLY rule), as dateutil does.

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


class WorkExhausted(Exception):
    """A compile (or a listing) spent its :class:`WorkMeter` budget.

    Not a ValueError: :meth:`WallClockExpansion.wall_times_from` reads dateutil's
    ValueErrors as "no occurrence", and this must reach the caller instead.
    """


class WorkMeter:
    """The work a compile (or a listing) may do, in work units; charged as the expansion goes, never renewed.

    A unit is about 0.1 µs of CPU on the reference machine (the 2-core AMD EPYC
    build machine; :data:`UNITS_PER_MILLISECOND`): a MINUTELY rule's step from
    one minute to the next costs two. The count depends on the rule and its
    start only, never on the machine or its load.
    """

    __slots__ = ("budget", "spent")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.spent = 0

    def charge(self, units: int) -> None:
        self.spent += units
        if self.spent > self.budget:
            raise WorkExhausted


# Work units per millisecond of CPU on the reference machine, for messages.
UNITS_PER_MILLISECOND: Final = 10_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class _WorkCost:
    """What dateutil's expansion of one rule costs, in work units, by what it steps through.

    Known from the rule before any expansion. dateutil steps through
    *candidates*, ``step`` apart: each INTERVAL-th day of a DAILY rule, each
    day of the weeks a WEEKLY rule visits (one day per INTERVAL), each
    INTERVAL-th minute or hour of a sub-daily rule whose INTERVAL is a day or
    more. A sub-daily rule with a shorter INTERVAL costs ``per_day`` for each
    day (its day list, its day filters, and the steps from midnight to its
    first allowed hour, after which a day the filters refuse is skipped) and
    ``per_matched_day`` for each day it produces a time on (the steps through
    the rest of it). YEARLY and MONTHLY rules cost ``per_period`` for each
    year or month they visit: dateutil checks all of its days before producing
    any. Then each month entered, each rebuild of dateutil's calendar masks and
    each time produced. The weights are measured (docs/PERFORMANCE.md, "RRULE
    bombs": ``benchmarks/rrule_bombs.py --calibrate``).
    """

    step: timedelta
    per_candidate: int
    per_day: int
    per_matched_day: int
    per_month: int
    per_rebuild: int
    per_period: int
    per_produced: int
    # Steps of more than 28 days can jump whole months, which rebuilds alone would not show:
    # the position is then also taken from each time produced.
    jumps_months: bool


class _BoundedRRule(dateutil_rrule.rrule):
    """A dateutil rule whose scan stops after a budget of calendar rebuilds.

    ``_iterinfo.rebuild`` runs whenever dateutil's iteration enters a new month
    or year (and once at its start), and reads ``rrule._byeaster`` each time.
    BYEASTER is a dateutil extension we never use, so the attribute is free to
    become the budget counter. The same reads tell a :class:`WorkMeter` that a
    month of calendar has been stepped through, which is when it is charged:
    once a month, so metering costs nothing per step of dateutil's loop.
    """

    _dtstart: datetime  # dateutil's private DTSTART, replaced by restarted()
    _rebuilds_left: int = 1 << 62
    # The work meter of a compile (None: nothing is counted) and what was charged to it so far:
    # the calendar from `_origin` up to the furthest point dateutil is known to have reached.
    # dateutil reads the hook once before its first step (in `_iter`), then once per rebuild.
    _work_cost: _WorkCost | None = None
    _meter: WorkMeter | None = None
    _origin: datetime
    _charged: tuple[int, int, int] = (0, 0, 0)  # candidates, days, months from `_origin`
    _reads: int = 0
    _last_produced_day: int = 0

    # dateutil stores a plain attribute here; the property is the budget hook (see the class docstring).
    @property
    def _byeaster(self) -> None:
        self._rebuilds_left -= 1
        if self._rebuilds_left < 0:
            raise _ScanExhausted
        meter, cost = self._meter, self._work_cost
        if meter is not None and cost is not None:
            self._charge_rebuild(meter=meter, cost=cost)
        return None

    @_byeaster.setter
    def _byeaster(self, value: object) -> None:
        if value is not None:  # pragma: no cover - we never pass byeaster
            raise ValueError("BYEASTER is not supported")

    def restarted(
        self, *, period_start: datetime, rebuilds: int, meter: WorkMeter | None = None
    ) -> _BoundedRRule:
        """A copy that starts at another (aligned) period; cheaper than building a new rule."""
        clone = object.__new__(_BoundedRRule)
        clone.__dict__.update(self.__dict__)
        clone._dtstart = period_start
        clone._rebuilds_left = rebuilds
        if meter is not None and clone._work_cost is not None:
            clone._meter = meter
            clone._origin = period_start
        return clone

    def renew_budget(self, rebuilds: int) -> None:
        self._rebuilds_left = rebuilds

    def charge_produced(self, wall: datetime) -> None:
        """Charge the meter for ``wall``, a time dateutil produced (and for its day, if new)."""
        meter, cost = self._meter, self._work_cost
        if meter is None or cost is None:
            return
        meter.charge(cost.per_produced)
        if cost.per_matched_day:
            day = wall.toordinal()
            if day != self._last_produced_day:
                self._last_produced_day = day
                meter.charge(cost.per_matched_day)
        if cost.jumps_months:
            self._charge_to(wall, meter=meter, cost=cost)

    def _charge_rebuild(self, *, meter: WorkMeter, cost: _WorkCost) -> None:
        self._reads += 1
        if self._reads == 1:
            return  # `_iter` reading its local copy, before the first rebuild
        meter.charge(cost.per_rebuild + cost.per_period)
        if self._reads > 2 and not cost.per_period:
            # A later rebuild means dateutil entered a new month: all before its first day was
            # stepped through. (Charged when a month is entered, so the month a search stops in
            # is not: a search can leave up to a month of work uncounted.)
            months = self._charged[2]
            year, month_index = divmod(self._origin.year * 12 + self._origin.month + months, 12)
            if year <= LAST_YEAR:
                first_of_month = datetime(year, month_index + 1, 1)  # noqa: DTZ001 - wall-clock time
                self._charge_to(first_of_month, meter=meter, cost=cost)

    def _charge_to(self, position: datetime, *, meter: WorkMeter, cost: _WorkCost) -> None:
        origin = self._origin
        candidates, days, months = self._charged
        new_candidates = max(0, (position - origin) // cost.step - candidates)
        new_days = max(0, (position.date() - origin.date()).days - days)
        new_months = max(0, (position.year - origin.year) * 12 + position.month - origin.month - months)
        self._charged = (candidates + new_candidates, days + new_days, months + new_months)
        meter.charge(
            new_candidates * cost.per_candidate + new_days * cost.per_day + new_months * cost.per_month
        )


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


# The weights of _WorkCost, in work units (about 0.1 µs each), as measured.
_UNITS_PER_STEP: Final = 2  # a MINUTELY or HOURLY step through the calendar
_UNITS_PER_DAILY_STEP: Final = 25  # a DAILY step: dateutil builds a year-long list of days for it
_UNITS_PER_SUB_DAILY_DAY: Final = 70  # the same list and the day filters, for a sub-daily rule's day
_UNITS_PER_HOURLY_TIME: Final = 8  # an HOURLY rule's minutes x seconds, written out at each day
_UNITS_PER_WEEKLY_DAY: Final = 6
_UNITS_PER_MONTHLY_DAY: Final = 3
_UNITS_PER_YEARLY_DAY: Final = 1
_SET_POSITIONS_PER_UNIT_DAY: Final = 4  # BYSETPOS lists a period's days again for each position
_UNITS_PER_MONTH: Final = 10
_UNITS_PER_REBUILD: Final = 50
_UNITS_PER_PRODUCED_TIME: Final = 20
_UNITS_PER_PRODUCED_SUB_DAILY_TIME: Final = 60  # each is a step of dateutil's outer loop too


def work_cost(rule: ExplicitRule) -> _WorkCost:
    """What expanding ``rule`` costs per candidate, day, month, rebuild and time produced."""
    frequency, interval = rule.frequency, rule.interval
    positions = math.ceil(len(rule.by_set_position) / _SET_POSITIONS_PER_UNIT_DAY)
    per_candidate = per_day = per_matched_day = per_period = 0
    per_produced = _UNITS_PER_PRODUCED_TIME
    if frequency in ("MINUTELY", "HOURLY"):
        unit = timedelta(minutes=1) if frequency == "MINUTELY" else timedelta(hours=1)
        step = unit * interval
        day_work = _UNITS_PER_SUB_DAILY_DAY
        if frequency == "HOURLY":
            day_work += _UNITS_PER_HOURLY_TIME * len(rule.by_minute) * len(rule.by_second)
        if step >= timedelta(days=1):
            per_candidate = _UNITS_PER_STEP + day_work  # every step lands on a day of its own
        else:
            first_hour = min(rule.by_hour, default=0)
            per_day = day_work + _UNITS_PER_STEP * math.ceil(timedelta(hours=first_hour) / step)
            per_matched_day = _UNITS_PER_STEP * math.ceil(timedelta(days=1) / step)
        per_produced = _UNITS_PER_PRODUCED_SUB_DAILY_TIME
    elif frequency == "DAILY":
        step, per_candidate = timedelta(days=interval), _UNITS_PER_DAILY_STEP
    elif frequency == "WEEKLY":
        step, per_candidate = timedelta(days=interval), _UNITS_PER_WEEKLY_DAY + positions
    else:
        step = timedelta(days=interval)
        days, per_day_check = (
            (366, _UNITS_PER_YEARLY_DAY) if frequency == "YEARLY" else (31, _UNITS_PER_MONTHLY_DAY)
        )
        per_period = days * (per_day_check + positions)
    return _WorkCost(
        step=step,
        per_candidate=per_candidate,
        per_day=per_day,
        per_matched_day=per_matched_day,
        per_month=0 if per_period else _UNITS_PER_MONTH,
        per_rebuild=_UNITS_PER_REBUILD,
        per_period=per_period,
        per_produced=per_produced,
        jumps_months=not per_period and step > timedelta(days=28),
    )


def week_numbering_year(day: date, *, week_start: int) -> int:
    """The year a week belongs to: the one holding its fourth day (ISO 8601 when weeks start on Monday)."""
    first_day_of_week = day - timedelta(days=(day.weekday() - week_start) % 7)
    return (first_day_of_week + timedelta(days=3)).year


def _week_index(day: date, *, year: int, week_start: int) -> int:
    """The number of ``day``'s week in ``year``'s numbering (week 1 holds 4 January)."""

    def first_day_of_week(some_day: date) -> date:
        return some_day - timedelta(days=(some_day.weekday() - week_start) % 7)

    return (first_day_of_week(day) - first_day_of_week(date(year, 1, 4))).days // 7 + 1


def in_weeks(day: date, weeks: tuple[int, ...], *, week_start: int) -> bool:
    """Whether ``day`` lies in one of ``weeks`` (BYWEEKNO: negative counts from the end) of its year.

    Its year is the one its week is numbered in, so 30 December 2008 is in week 1
    (and week -53) of 2009. 28 December is always in the last week of its year.
    """
    year = week_numbering_year(day, week_start=week_start)
    week = _week_index(day, year=year, week_start=week_start)
    weeks_in_year = _week_index(date(year, 12, 28), year=year, week_start=week_start)
    return week in weeks or week - weeks_in_year - 1 in weeks


def dateutil_week_numbers(weeks: tuple[int, ...]) -> tuple[int, ...]:
    """BYWEEKNO as dateutil is given it: each week in both spellings, for a year of 52 and of 53 weeks.

    dateutil misses the days of a negative week that fall in the December before
    (week -53 of 2009 begins on 29 December 2008) and yields January days as week 53
    of a year that has only 52 (1 January 2039). Asked for every spelling, it yields
    a superset; :func:`in_weeks` then keeps exactly the days of the weeks asked for.
    """
    spelled = set(weeks)
    for week in weeks:
        for weeks_in_year in (52, 53):
            other = week - weeks_in_year - 1 if week > 0 else week + weeks_in_year + 1
            if 1 <= abs(other) <= 53:
                spelled.add(other)
    return tuple(sorted(spelled))


class WallClockExpansion:
    """The naive wall-clock times a rule produces, restartable anywhere at a cost independent of the past."""

    def __init__(self, *, rule: ExplicitRule, start_wall: datetime, search_horizon: timedelta) -> None:
        self.rule = rule
        self._start_period = self._period_floor(start_wall)
        # The rule's years are the start's calendar year and every INTERVAL-th after it (RFC 5545:
        # YEARLY periods are calendar years); a day belongs to the year its week is numbered in.
        # Not the start's week-numbering year: a start on 1 January can lie in the last week of
        # the year before, which would shift every year of the rule by one.
        self._first_rule_year = start_wall.year
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
                # With BYSETPOS the set it picks from must stay dateutil's own (a known limit, see
                # docs/RECURRENCE.md); otherwise every spelling, filtered below.
                byweekno=(
                    rule.by_week_number
                    if rule.by_set_position
                    else dateutil_week_numbers(rule.by_week_number)
                )
                or None,
                bymonth=rule.by_month or None,
                bysetpos=rule.by_set_position or None,
            )
        except ValueError as error:
            # dateutil refuses BYHOUR/BYMINUTE values that INTERVAL can never reach.
            raise rules.ScheduleError(f"the rule can never produce an occurrence ({error})") from None
        self._template._work_cost = work_cost(rule)

    def wall_times_from(self, wall: datetime, *, meter: WorkMeter | None = None) -> Iterator[datetime]:
        """Wall-clock times at or after ``wall``, in order.

        The expansion restarts at the aligned period holding ``wall`` (or the
        start's period), so it may find times before ``wall``: they are
        skipped here. Without the start's own filtering: times before the
        start of the schedule are the caller's to drop. Ends when the search
        horizon passes without an occurrence, or at :data:`LAST_YEAR`. With a
        ``meter``, the work is charged to it, and :class:`WorkExhausted` is
        raised when its budget is spent.
        """
        if wall.year > LAST_YEAR:
            return
        period_start = self._aligned_period_start(wall)
        expansion = self._template.restarted(period_start=period_start, rebuilds=self._rebuilds, meter=meter)
        times = iter(expansion)
        numbering_interval = self.rule.week_numbering_year_interval
        weeks = () if self.rule.by_set_position else self.rule.by_week_number
        while True:
            try:
                wall_time = next(times)
            except (StopIteration, _ScanExhausted):
                return
            except ValueError:
                # dateutil: "Invalid combination of interval and byhour resulting in empty rule".
                return
            expansion.charge_produced(wall_time)
            if wall_time.year > LAST_YEAR:
                return
            if weeks and not in_weeks(wall_time.date(), weeks, week_start=self.rule.week_start):
                continue  # one of dateutil_week_numbers()'s extra spellings: not an occurrence
            if self.rule.by_week_number:
                # A week's days belong to the year it is numbered in: 1 January 2033 is in the last
                # week of 2032, which is not one of the rule's years when the rule starts in 2033.
                year = week_numbering_year(wall_time.date(), week_start=self.rule.week_start)
                if year < self._first_rule_year or (year - self._first_rule_year) % numbering_interval:
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


def days_never_match(
    rule: ExplicitRule, *, start_wall: datetime, search_horizon: timedelta, meter: WorkMeter | None = None
) -> bool:
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
    first_of_year = datetime(start_wall.year, 1, 1)  # noqa: DTZ001 - wall-clock time
    template = _BoundedRRule(
        dateutil_rrule.YEARLY,
        dtstart=first_of_year,
        bymonth=rule.by_month or None,
        bymonthday=rule.by_month_day or None,
        byyearday=rule.by_year_day or None,
        byweekday=[day.weekday for day in rule.by_day] or None,
        byhour=0,
        byminute=0,
        bysecond=0,
    )
    template._work_cost = work_cost(
        dataclasses.replace(rule, frequency="YEARLY", interval=1, by_set_position=())
    )
    days = template.restarted(period_start=first_of_year, rebuilds=years + 2, meter=meter)
    try:
        first = next(iter(days), None)
    except _ScanExhausted:
        return True
    if first is not None:
        days.charge_produced(first)
    return first is None


def _dateutil_weekday(day: rules.WeekdayRule) -> dateutil_rrule.weekday:
    return dateutil_rrule.weekday(day.weekday, day.ordinal)
