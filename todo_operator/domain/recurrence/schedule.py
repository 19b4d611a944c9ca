"""Schedules: a rule, a start, a zone and bounds, asked "when is this due next?".

Occurrences are expanded in wall-clock time (see :mod:`.expansion`) and only
then turned into instants, with one policy (docs/RECURRENCE.md, "Time zones"):

* an occurrence keeps its wall-clock time in the schedule's zone;
* a wall-clock time that does not exist (spring-forward gap) moves forward
  by the length of the gap (RFC 5545 §3.3.5; Google Calendar, ical4j and
  rust-rrule do the same);
* an ambiguous one (fall-back) is its first, earlier instant;
* no instant is produced twice, and COUNT counts distinct instants.

The first two points are exactly what PEP 495 gives for ``fold=0``, so the
resolution is ``wall - zone.utcoffset(wall)``. Moving gap times forward can
put them after later wall-clock times (02:45 in the gap becomes 03:45, after
a 03:00 occurrence), so instants are re-ordered in a small heap that holds
only gap times. Internally instants are naive UTC datetimes: comparing aware
datetimes that share a tzinfo ignores ``fold`` (PEP 495), which is exactly
the trap this module exists to avoid.

Nothing here reads the clock: every "now" is a parameter.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from todo_operator.domain import zones
from todo_operator.domain.recurrence import expansion, rules

Every = Literal["daily", "weekly", "monthly", "yearly"]
Anchor = Literal["schedule", "completion"]

_FIRST_YEAR = 1900
_LAST_START_YEAR = 2999


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    """A schedule as users write it (``RecurringTask.spec.schedule``).

    Naive datetimes are wall-clock times in ``time_zone``; aware ones are instants.
    """

    rrule: str | None = None
    every: Every | None = None
    interval: int = 1
    start: datetime
    time_zone: str = "UTC"
    until: datetime | None = None
    count: int | None = None
    exdates: tuple[datetime, ...] = ()
    # Extra occurrences beside the rule's (RFC 5545 RDATE): not counted by COUNT nor bounded by UNTIL.
    rdates: tuple[datetime, ...] = ()


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or a ScheduleError that says it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError/OSError: names that are not zone keys at all ("../x", "", a folder).
        raise rules.ScheduleError(zones.unknown_time_zone(name)) from None


class Recurrence:
    """A compiled schedule. Build it with :meth:`compile`; every method is pure and cheap.

    All returned datetimes are aware, in :attr:`zone`. Methods that take an
    instant need an aware datetime (any zone).
    """

    rule_text: str
    zone: ZoneInfo
    start: datetime
    until: datetime | None
    count: int | None
    every: Every | None  # set when the schedule was written with `every` (matters for anchor=completion)
    compile_work: int  # the work units compile() spent (Limits.max_compile_work), 0 when not compiled

    def __init__(
        self,
        *,
        rule: rules.Rule,
        every: Every | None,
        zone: ZoneInfo,
        start_wall: datetime,
        until_utc: datetime | None,
        exdates_utc: frozenset[datetime],
        limits: rules.Limits,
        rdates_utc: tuple[datetime, ...] = (),
    ) -> None:
        # Not for callers: use compile(), which validates. next_due() builds restarted copies this way.
        self._rule = rule
        self._limits = limits
        self.zone = zone
        self._start_wall = start_wall
        self._start_utc = _resolve(start_wall, zone)
        self._until_utc = until_utc
        self._exdates_utc = exdates_utc
        self._rdates_utc = tuple(sorted(set(rdates_utc) - exdates_utc))  # EXDATE wins (RFC 5545 §3.8.5.1)
        self.count = rule.count
        self.every = every
        self.rule_text = dataclasses.replace(rule, until_utc=until_utc, until_wall=None).text()
        self.start = self._aware(self._start_utc)
        self.until = None if until_utc is None else self._aware(until_utc)
        self._search_horizon = (
            min(limits.search_horizon, limits.sub_daily_search_horizon)
            if rule.frequency in ("HOURLY", "MINUTELY")
            else limits.search_horizon
        )
        self._expansion = expansion.WallClockExpansion(
            rule=expansion.make_explicit(rule, start_wall=start_wall),
            start_wall=start_wall,
            search_horizon=self._search_horizon,
        )
        # The COUNT-th instant, computed once (by compile(), under its work budget).
        self._count_end_utc: datetime | None = None
        self.compile_work = 0

    @classmethod
    def compile(cls, spec: ScheduleSpec, *, limits: rules.Limits | None = None) -> Recurrence:
        """Validate ``spec`` and prepare it; raises :class:`ScheduleError` with a readable message."""
        limits = rules.Limits() if limits is None else limits
        zone = load_zone(spec.time_zone)
        rule = _rule_of(spec, limits=limits)
        start_wall = _wall_clock(spec.start, zone=zone, what="start").replace(microsecond=0)
        if not _FIRST_YEAR <= start_wall.year <= _LAST_START_YEAR:
            raise rules.ScheduleError(f"start must be between the years {_FIRST_YEAR} and {_LAST_START_YEAR}")
        explicit = expansion.make_explicit(rule, start_wall=start_wall)
        _check_times_per_day(explicit, limits=limits)
        _check_minutes_apart(explicit, limits=limits)
        start_utc = _resolve(start_wall, zone)
        until_utc = _until_of(spec, rule=rule, zone=zone, start_utc=start_utc, limits=limits)
        count = _count_of(spec, rule=rule, limits=limits)
        if count is not None and until_utc is not None:
            raise rules.ScheduleError("count and until cannot both be given")
        exdates = frozenset(
            _spec_instant(
                _wall_clock(exdate, zone=zone, what="exdate").replace(microsecond=0), zone, what="exdate"
            )
            for exdate in spec.exdates
        )
        rdates = tuple(
            _spec_instant(
                _wall_clock(rdate, zone=zone, what="rdate").replace(microsecond=0), zone, what="rdate"
            )
            for rdate in spec.rdates
        )
        if too_early := [rdate for rdate in rdates if rdate < start_utc]:
            raise rules.ScheduleError(
                f"rdate {_show(too_early[0].replace(tzinfo=UTC).astimezone(zone))} is before the start"
            )
        recurrence = cls(
            rule=dataclasses.replace(rule, count=count, until_utc=None, until_wall=None),
            every=spec.every,
            zone=zone,
            start_wall=start_wall,
            until_utc=until_utc,
            exdates_utc=exdates,
            limits=limits,
            rdates_utc=rdates,
        )
        # The compile's work budget, passed down explicitly: the schedule, once returned, is shared
        # by threads and carries none (its queries are bounded by the search horizon).
        meter = expansion.WorkMeter(limits.max_compile_work)
        try:
            recurrence._check_produces_occurrences(meter)
            recurrence._check_spacing(meter)
            # COUNT's one-off listing, done here under the budget: on the first query it could
            # take minutes (10,000 occurrences of a rule that matches twice a year).
            recurrence._count_end(meter)
        except expansion.WorkExhausted:
            raise recurrence._too_costly_error(work=meter.spent) from None
        recurrence.compile_work = meter.spent
        return recurrence

    # -- what the operator asks ------------------------------------------------------------------

    def next_after(self, instant: datetime) -> datetime | None:
        """The first occurrence strictly after ``instant``; None when the schedule has ended."""
        after = _utc(instant)
        for occurrence in self._occurrences_from(after):
            if occurrence > after:
                return self._aware(occurrence)
        return None

    def first_at_or_after(self, instant: datetime) -> datetime | None:
        """The first occurrence at or after ``instant``; None when the schedule has ended."""
        for occurrence in self._occurrences_from(_utc(instant)):
            return self._aware(occurrence)
        return None

    def between(self, start: datetime, end: datetime) -> list[datetime]:
        """The occurrences in ``[start, end)``. Its cost grows with the number of results."""
        end_utc = _utc(end)
        found: list[datetime] = []
        for occurrence in self._occurrences_from(_utc(start)):
            if occurrence >= end_utc:
                break
            found.append(self._aware(occurrence))
        return found

    def upcoming(self, after: datetime, *, count: int, inclusive: bool = False) -> list[datetime]:
        """The next ``count`` occurrences after ``after`` (or at it, with ``inclusive``): a preview.

        Listed under the same budget as a compile (``Limits.max_compile_work``):
        a schedule whose occurrences are far apart for its FREQ (a MINUTELY rule
        that matches a few days a year, a hundred of them asked) raises
        :class:`ScheduleTooCostly` rather than scanning for a second.
        """
        after_utc = _utc(after)
        found: list[datetime] = []
        if count <= 0:
            return found
        meter = expansion.WorkMeter(self._limits.max_compile_work)
        try:
            for occurrence in self._occurrences_from(after_utc, meter=meter):
                if occurrence > after_utc or (inclusive and occurrence == after_utc):
                    found.append(self._aware(occurrence))
                    if len(found) >= count:
                        break
        except expansion.WorkExhausted:
            raise rules.ScheduleTooCostly(
                f"listing {count} occurrences of the rule {self.rule_text} takes more than"
                f" {meter.budget:,} work units (about {_milliseconds(meter.budget)} ms of CPU): its"
                f" occurrences are far apart for its FREQ; ask for fewer (it found {len(found)})",
                work=meter.spent,
            ) from None
        return found

    def first(self, n: int) -> list[datetime]:
        """The first ``n`` occurrences from the start."""
        found: list[datetime] = []
        if n <= 0:
            return found
        for occurrence in self._occurrences_from(self._start_utc):
            found.append(self._aware(occurrence))
            if len(found) >= n:
                break
        return found

    def is_excluded(self, instant: datetime) -> bool:
        """Whether ``instant`` is one of the schedule's exdates."""
        return _utc(instant) in self._exdates_utc

    def next_after_completion(self, completed_at: datetime) -> datetime | None:
        """The next due under ``anchor: completion``, ignoring COUNT (see :func:`next_due`).

        The earlier of the rule measured from the completion and the next rdate after it.
        """
        after_rule = self._rule_after_completion(completed_at)
        completed_utc = _utc(completed_at)
        rdate = next((rdate for rdate in self._rdates_utc if rdate > completed_utc), None)
        if rdate is not None and (after_rule is None or rdate < _utc(after_rule)):
            return self._aware(rdate)
        return after_rule

    def _rule_after_completion(self, completed_at: datetime) -> datetime | None:
        completed_wall = _wall_of(_utc(completed_at), self.zone)
        restart_wall = completed_wall.replace(
            hour=self._start_wall.hour,
            minute=self._start_wall.minute,
            second=self._start_wall.second,
            microsecond=0,
        )
        if self.every is not None:
            return self._one_interval_later(every=self.every, completion_day_wall=restart_wall)
        restarted = Recurrence(
            rule=dataclasses.replace(self._rule, count=None),  # COUNT: the caller counts spawned occurrences
            every=None,
            zone=self.zone,
            start_wall=restart_wall,
            until_utc=self._until_utc,
            exdates_utc=self._exdates_utc,
            limits=self._limits,
        )
        return restarted.next_after(max(restarted.start, completed_at, key=_utc))

    def _one_interval_later(self, *, every: Every, completion_day_wall: datetime) -> datetime | None:
        interval = self._rule.interval
        step = {
            "daily": relativedelta(days=interval),
            "weekly": relativedelta(weeks=interval),
            "monthly": relativedelta(months=interval),
            "yearly": relativedelta(years=interval),
        }[every]
        # Exdates are finite, so len(exdates) + 1 steps always get past them.
        for steps in range(1, len(self._exdates_utc) + 2):
            due_wall = completion_day_wall + step * steps
            if due_wall.year > expansion.LAST_YEAR:
                return None
            due = _resolve(due_wall, self.zone)
            if self._until_utc is not None and due > self._until_utc:
                return None
            if due not in self._exdates_utc:
                return self._aware(due)
        return None  # pragma: no cover - unreachable by the pigeonhole argument above

    # -- expansion -------------------------------------------------------------------------------

    def _occurrences_from(
        self, earliest_utc: datetime, *, meter: expansion.WorkMeter | None = None
    ) -> Iterator[datetime]:
        """Occurrences at or after ``earliest_utc``: the rule's instants within COUNT, and the rdates,
        minus exdates (RFC 5545 §3.8.5: COUNT and UNTIL belong to the rule, EXDATE removes from both)."""
        count_end = self._count_end(meter)
        end = self._until_utc if count_end is None else count_end
        ruled = self._rule_instants_from(earliest_utc, end=end, excluded=self._exdates_utc, meter=meter)
        if not self._rdates_utc:
            return ruled
        lower = max(earliest_utc, self._start_utc)
        extra = (rdate for rdate in self._rdates_utc if rdate >= lower)
        return (instant for instant, _ in itertools.groupby(heapq.merge(ruled, extra)))

    def _count_end(self, meter: expansion.WorkMeter | None = None) -> datetime | None:
        """The COUNT-th distinct instant: with COUNT, the schedule is the rule up to it.

        Listing from the start is unavoidable (the position of an occurrence
        depends on all before it) but bounded by ``Limits.max_count`` and by the
        compile's work budget, and done once, by :meth:`compile`; afterwards
        COUNT costs what UNTIL costs.
        """
        if self.count is None:
            return None
        if self._count_end_utc is None:
            last = self._start_utc
            instants = self._rule_instants_from(
                self._start_utc, end=self._until_utc, excluded=frozenset(), meter=meter
            )
            for position, instant in enumerate(instants, start=1):
                last = instant
                if position >= self.count:
                    break
            self._count_end_utc = last
        return self._count_end_utc

    def _rule_instants_from(
        self,
        earliest_utc: datetime,
        *,
        end: datetime | None,
        excluded: frozenset[datetime],
        meter: expansion.WorkMeter | None = None,
    ) -> Iterator[datetime]:
        """Instants (naive UTC) in ``[earliest_utc, end]``, sorted and distinct, minus ``excluded``.

        ``excluded`` instants still take their place (they are skipped after
        ordering and de-duplication), so exdates never change what COUNT counts.
        """
        lower = max(earliest_utc, self._start_utc)
        zone = self.zone
        lower_wall = _wall_of(lower, zone)
        # A wall time up to one gap before `lower_wall` may resolve after `lower`; look that far back.
        slack = abs(_offset(zone, lower_wall + _TWO_DAYS) - _offset(zone, lower_wall - _TWO_DAYS))
        waiting: list[datetime] = []  # gap times moved forward, not yet safe to emit
        # Emitted instants increase strictly: `> last` filters both duplicates and times before `lower`.
        last = lower - _ONE_MICROSECOND
        start_wall = self._start_wall
        for wall in self._expansion.wall_times_from(lower_wall - slack, meter=meter):
            if wall < start_wall:
                # A slot before the start on the wall clock is not the rule's, even when it lies in
                # a gap and so resolves onto the start's instant (02:00 moved to a 03:00 start).
                continue
            offset = _offset(zone, wall)  # fold=0: the gap/ambiguity policy, see the module docstring
            instant = wall - offset
            if _offset(zone, wall.replace(fold=1)) > offset:
                heapq.heappush(waiting, instant)  # in a gap: a later wall time may still resolve before it
                continue
            # `wall` exists, so every later wall time resolves after `instant`: all up to it are final.
            while waiting and waiting[0] <= instant:
                candidate = heapq.heappop(waiting)
                if candidate > last:
                    if end is not None and candidate > end:
                        return
                    last = candidate
                    if candidate not in excluded:
                        yield candidate
            if instant > last:
                if end is not None and instant > end:
                    return
                last = instant
                if instant not in excluded:
                    yield instant
        while waiting:
            candidate = heapq.heappop(waiting)
            if candidate > last:
                if end is not None and candidate > end:
                    return
                last = candidate
                if candidate not in excluded:
                    yield candidate

    def _aware(self, instant_utc: datetime) -> datetime:
        return instant_utc.replace(tzinfo=UTC).astimezone(self.zone)

    # -- compile-time checks ---------------------------------------------------------------------

    def _check_produces_occurrences(self, meter: expansion.WorkMeter) -> None:
        if expansion.set_positions_never_match(self._expansion.rule):
            raise rules.ScheduleError(
                f"the rule {self.rule_text} can never produce an occurrence: BYSETPOS asks for more "
                f"occurrences than one {self._rule.frequency.lower()} period has"
            )
        if expansion.days_never_match(
            self._expansion.rule,
            start_wall=self._start_wall,
            search_horizon=self._search_horizon,
            meter=meter,
        ):
            raise self._no_occurrence_error()
        first = next(
            self._rule_instants_from(self._start_utc, end=self._until_utc, excluded=frozenset(), meter=meter),
            None,
        )
        if first is None:
            if self._until_utc is not None:
                first_unbounded = next(
                    self._rule_instants_from(self._start_utc, end=None, excluded=frozenset(), meter=meter),
                    None,
                )
                if first_unbounded is not None:
                    raise rules.ScheduleError(
                        f"the schedule ends ({_show(self._aware(self._until_utc))}) before its first "
                        f"occurrence ({_show(self._aware(first_unbounded))})"
                    )
            raise self._no_occurrence_error()
        # A bounded schedule could be all exdates (an unbounded one cannot: exdates are finite).
        # This looks at no more than len(exdates) + 1 instants.
        bounded = self.count is not None or self._until_utc is not None
        if (
            self._exdates_utc
            and bounded
            and next(self._occurrences_from(self._start_utc, meter=meter), None) is None
        ):
            raise rules.ScheduleError("every occurrence of the schedule is excluded by exdates")

    def _no_occurrence_error(self) -> rules.ScheduleError:
        years = round(self._search_horizon / timedelta(days=365.25))
        return rules.ScheduleError(
            f"the rule {self.rule_text} produces no occurrence within {years} years after the start"
        )

    def _too_costly_error(self, *, work: int) -> rules.ScheduleTooCostly:
        budget = self._limits.max_compile_work
        return rules.ScheduleTooCostly(
            f"the rule {self.rule_text} is too costly to compute: finding the occurrences a schedule is"
            f" checked on takes more than {budget:,} work units (about {_milliseconds(budget)} ms of CPU);"
            " use a coarser FREQ (FREQ=DAILY with BYHOUR and BYMINUTE rather than FREQ=MINUTELY),"
            " fewer BYxxx filters or a smaller COUNT",
            work=work,
        )

    def _check_spacing(self, meter: expansion.WorkMeter) -> None:
        """Occurrences must be at least ``Limits.min_spacing`` apart, judged on the rule's own output.

        Two looks: the times of day a day-or-longer rule produces (all of
        them, so a rare day cannot hide a close pair), and the first
        ``Limits.spacing_sample`` wall-clock times within the rule's search
        horizon (which catches pairs across midnight and every sub-daily
        pattern, since those repeat within a few periods).

        Why the horizon: a sub-daily rule with day filters is scanned minute by
        minute, and one with two occurrences a year would need 64 years for 128
        of them (4 s of CPU). Within the horizon (4 years for HOURLY and
        MINUTELY) every day-filter pattern but the weekday-and-date ones comes
        round; a close pair that only a 28-year calendar cycle brings is not a
        flood, and min_spacing exists against floods.
        """
        minimum = self._limits.min_spacing
        if minimum <= timedelta(0):
            return  # Limits.engine_only(): nothing to check
        explicit = self._expansion.rule
        if explicit.frequency in ("YEARLY", "MONTHLY", "WEEKLY", "DAILY"):
            # How many times of day there are was checked before the expansion was built.
            seconds = [h * 3600 + m * 60 + s for h, m, s in explicit.times_of_day()]
            for earlier, later in itertools.pairwise(seconds):
                if timedelta(seconds=later - earlier) < minimum:
                    raise rules.ScheduleError(
                        f"occurrences must be at least {_show_duration(minimum)} apart; this rule has "
                        f"{_show_time(earlier)} and {_show_time(later)} on the same day"
                    )
            if timedelta(seconds=seconds[0] + 86_400 - seconds[-1]) >= minimum:
                return  # no pair across midnight can be closer either: nothing left to sample
        previous: datetime | None = None
        horizon_end = self._start_wall + self._search_horizon
        for seen, wall in enumerate(self._expansion.wall_times_from(self._start_wall, meter=meter)):
            if seen >= self._limits.spacing_sample or wall > horizon_end:
                break
            if wall < self._start_wall:
                continue
            if previous is not None and wall - previous < minimum:
                raise rules.ScheduleError(
                    f"occurrences must be at least {_show_duration(minimum)} apart; this rule has "
                    f"{previous:%Y-%m-%d %H:%M:%S} and {wall:%Y-%m-%d %H:%M:%S}"
                )
            previous = wall


# -- the two completion policies ----------------------------------------------------------------


def next_due(
    recurrence: Recurrence,
    *,
    anchor: Anchor,
    previous_due: datetime,
    completed_at: datetime,
    occurrences_so_far: int,
) -> datetime | None:
    """When the occurrence after the one just completed is due; None when the schedule has ended.

    ``anchor="schedule"``: the first occurrence strictly after both
    ``previous_due`` and ``completed_at``. COUNT is part of the rule: the
    schedule ends at its COUNT-th occurrence, and slots skipped because the
    task was completed late are not made up.

    ``anchor="completion"``: measured from ``completed_at``. For a schedule
    from ``every`` (pass it, as the spec says it), one interval after the
    completion day at the start's time of day (month and year steps keep the
    day of month, clamped to the month's end). For an ``rrule``, the rule
    restarted on the completion day at the start's time of day; the next due
    is its first occurrence strictly after that restart and after the
    completion. COUNT counts spawned occurrences (``occurrences_so_far``),
    since a restarted rule cannot count for itself.

    Under both anchors UNTIL is an absolute end of the rule, exdates are
    skipped and rdates come on top (under ``schedule`` COUNT does not count
    them, as RFC 5545 says; under ``completion`` every spawned occurrence counts).
    """
    if anchor == "schedule":
        return recurrence.next_after(max(previous_due, completed_at, key=_utc))
    if recurrence.count is not None and occurrences_so_far >= recurrence.count:
        return None
    return recurrence.next_after_completion(completed_at)


# -- parsing the spec ---------------------------------------------------------------------------


def _check_minutes_apart(rule: expansion.ExplicitRule, *, limits: rules.Limits) -> None:
    """Refuse a MINUTELY rule without BYMINUTE whose INTERVAL is shorter than ``Limits.min_spacing``.

    Such a rule takes every INTERVAL-th minute of each hour its other parts let
    through, so two of its occurrences are INTERVAL minutes apart as soon as it
    has any. Said before any expansion: the sampled spacing check would first
    have to find an occurrence, and with day filters (``BYYEARDAY=318;BYHOUR=21``)
    that is a scan of most of a year, minute by minute (about 200 ms).
    """
    if rule.frequency != "MINUTELY" or rule.by_minute or rule.interval > 30:
        return  # more than 30: one step an hour, and whether the next hour matches depends on the rule
    step = timedelta(minutes=rule.interval)
    if step < limits.min_spacing:
        raise rules.ScheduleError(
            f"occurrences must be at least {_show_duration(limits.min_spacing)} apart; FREQ=MINUTELY"
            f" without BYMINUTE has them {_show_duration(step)} apart in every hour it matches"
        )


def _check_times_per_day(rule: expansion.ExplicitRule, *, limits: rules.Limits) -> None:
    """Refuse a day-or-longer rule with more times of day than fit ``Limits.min_spacing`` apart.

    Checked before the expansion is built, not with the other spacing checks:
    dateutil writes out every BYHOUR x BYMINUTE x BYSECOND combination when the
    rule is made (86,400 of them fit in 437 characters: about 100 ms), and
    those are exactly the rules refused here.
    """
    if rule.frequency not in ("YEARLY", "MONTHLY", "WEEKLY", "DAILY"):
        return
    per_day = len(rule.by_hour) * len(rule.by_minute) * len(rule.by_second)
    if per_day > 1 and per_day * limits.min_spacing > timedelta(days=1):
        raise rules.ScheduleError(
            f"the rule has {per_day} times of day; occurrences must be at least "
            f"{_show_duration(limits.min_spacing)} apart"
        )


_TWO_DAYS = timedelta(days=2)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _rule_of(spec: ScheduleSpec, *, limits: rules.Limits) -> rules.Rule:
    if spec.rrule is not None and spec.every is not None:
        raise rules.ScheduleError("give either rrule or every, not both")
    if spec.rrule is not None:
        if spec.interval != 1:
            raise rules.ScheduleError("interval goes with every; in an rrule write INTERVAL=n")
        return rules.parse_rule(spec.rrule, limits=limits)
    if spec.every is not None:
        return rules.every_rule(every=spec.every, interval=spec.interval)
    raise rules.ScheduleError("a schedule needs rrule or every")


def _until_of(
    spec: ScheduleSpec, *, rule: rules.Rule, zone: ZoneInfo, start_utc: datetime, limits: rules.Limits
) -> datetime | None:
    candidates: list[datetime] = []
    if rule.until_utc is not None:
        candidates.append(rule.until_utc)
    if rule.until_wall is not None:
        candidates.append(_spec_instant(rule.until_wall, zone, what="UNTIL"))
    if spec.until is not None:
        wall = _wall_clock(spec.until, zone=zone, what="until").replace(microsecond=0)
        candidates.append(_spec_instant(wall, zone, what="until"))
    if not candidates:
        return None
    until = candidates[0]
    if any(other != until for other in candidates):
        raise rules.ScheduleError(
            "until is given both in the rrule (UNTIL) and in the schedule, with different values"
        )
    if until < start_utc:
        raise rules.ScheduleError(
            f"until ({_show(until.replace(tzinfo=UTC).astimezone(zone))}) is before the start"
        )
    if until - start_utc > limits.max_until_after_start:
        years = round(limits.max_until_after_start / timedelta(days=365.25))
        raise rules.ScheduleError(f"until must be within {years} years of the start")
    return until


def _count_of(spec: ScheduleSpec, *, rule: rules.Rule, limits: rules.Limits) -> int | None:
    if spec.count is not None and not 1 <= spec.count <= limits.max_count:
        raise rules.ScheduleError(f"count must be between 1 and {limits.max_count}, got {spec.count}")
    if spec.count is not None and rule.count is not None and spec.count != rule.count:
        raise rules.ScheduleError(
            f"count is given both in the rrule (COUNT={rule.count}) and in the schedule ({spec.count})"
        )
    return rule.count if rule.count is not None else spec.count


# -- time helpers -------------------------------------------------------------------------------


def _wall_clock(value: datetime, *, zone: ZoneInfo, what: str) -> datetime:
    """A spec datetime as naive wall-clock time in ``zone`` (naive input already is)."""
    if not isinstance(value, datetime):
        raise rules.ScheduleError(f"{what} must be a date and time, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=None)
    try:
        return value.astimezone(zone).replace(tzinfo=None, fold=0)
    except OverflowError:  # 9999-12-31T23:59-14:00 is in the year 10000 anywhere east of it
        raise rules.ScheduleError(f"{what} {value.isoformat()} is outside the years 1 to 9999") from None


def _spec_instant(wall: datetime, zone: ZoneInfo, *, what: str) -> datetime:
    """:func:`_resolve` for a time the user wrote: one the calendar cannot hold is their error."""
    try:
        return _resolve(wall, zone)
    except OverflowError:
        raise rules.ScheduleError(
            f"{what} {wall.isoformat()} in {zone.key} is outside the years 1 to 9999"
        ) from None


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (naive UTC) of a wall-clock time under the gap/ambiguity policy."""
    wall = wall.replace(fold=0)
    return wall - _offset(zone, wall)


def _offset(zone: ZoneInfo, wall: datetime) -> timedelta:
    """The zone's UTC offset at a naive wall-clock time (its ``fold`` picks the side of a transition)."""
    offset = zone.utcoffset(wall)
    if offset is None:  # pragma: no cover - ZoneInfo always has an offset
        raise ValueError(f"time zone {zone.key} has no UTC offset at {wall}")
    return offset


def _wall_of(instant_utc: datetime, zone: ZoneInfo) -> datetime:
    return instant_utc.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None, fold=0)


def _utc(instant: datetime) -> datetime:
    """An aware instant as naive UTC; naive input is a programming error here, not a user's."""
    offset = instant.utcoffset()
    if offset is None:
        raise ValueError(f"expected an aware datetime (an instant), got {instant!r}")
    return (instant.replace(tzinfo=None) - offset).replace(fold=0)


def _show(moment: datetime) -> str:
    return moment.isoformat()


def _show_time(seconds_of_day: int) -> str:
    hours, rest = divmod(seconds_of_day, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _milliseconds(work_units: int) -> int:
    return max(1, round(work_units / expansion.UNITS_PER_MILLISECOND))


def _show_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit_seconds, unit in ((3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % unit_seconds == 0:
            amount = seconds // unit_seconds
            return f"{amount} {unit}" + ("" if amount == 1 else "s")
    return f"{seconds} seconds"  # pragma: no cover - the loop always returns
