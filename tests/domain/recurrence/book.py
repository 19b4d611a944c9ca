"""YEARLY rules read by the book: RFC 5545 §3.3.10 applied day by day, with no engine.

The arbiter where the oracle (rrule-temporal) is known to misread a YEARLY
rule (test_oracle.py): each rule year's set is every day that belongs to that
year (its week's year when BYWEEKNO is given) and keeps every BY* part, times
the times of day; BYSETPOS picks from that set; then COUNT, UNTIL, RDATE and EXDATE.
Slow on purpose (each candidate day is tested against every part) and written
for this check only.
"""

from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def parts_of(rule: str) -> dict[str, list[str]]:
    return {key: value.split(",") for key, value in (part.split("=") for part in rule.split(";"))}


def _numbers(parts: dict[str, list[str]], key: str) -> frozenset[int] | None:
    return frozenset(map(int, parts[key])) if key in parts else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class YearlyRule:
    """A YEARLY rule's parts, with what the rule leaves out taken from its start (our reading)."""

    interval: int
    week_start: int
    months: frozenset[int] | None
    month_days: frozenset[int] | None
    year_days: frozenset[int] | None
    weeks: frozenset[int] | None
    weekdays: tuple[tuple[int, int | None], ...] | None  # (weekday, ordinal)
    times: tuple[time, ...]
    positions: tuple[int, ...]

    @classmethod
    def read(cls, rule: str, *, start: datetime) -> YearlyRule:
        parts = parts_of(rule)
        if parts["FREQ"] != ["YEARLY"]:
            raise ValueError(f"not a YEARLY rule: {rule}")
        if "BYWEEKNO" in parts and not {"BYYEARDAY", "BYMONTHDAY", "BYDAY"} & parts.keys():
            parts["BYDAY"] = [WEEKDAYS[start.weekday()]]  # the start's weekday (libical's reading)
        elif not {"BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY"} & parts.keys():
            parts.setdefault("BYMONTH", [str(start.month)])
            parts["BYMONTHDAY"] = [str(start.day)]
        return cls(
            interval=int(parts.get("INTERVAL", ["1"])[0]),
            week_start=WEEKDAYS.index(parts.get("WKST", ["MO"])[0]),
            months=_numbers(parts, "BYMONTH"),
            month_days=_numbers(parts, "BYMONTHDAY"),
            year_days=_numbers(parts, "BYYEARDAY"),
            weeks=_numbers(parts, "BYWEEKNO"),
            weekdays=tuple(
                (WEEKDAYS.index(entry[-2:]), int(entry[:-2]) if entry[:-2] else None)
                for entry in parts["BYDAY"]
            )
            if "BYDAY" in parts
            else None,
            times=tuple(
                sorted(
                    time(hour, minute, second)
                    for hour in map(int, parts.get("BYHOUR", [start.hour]))
                    for minute in map(int, parts.get("BYMINUTE", [start.minute]))
                    for second in map(int, parts.get("BYSECOND", [start.second]))
                )
            ),
            positions=tuple(map(int, parts.get("BYSETPOS", []))),
        )

    def _week_one(self, year: int) -> date:
        fourth = date(year, 1, 4)
        return fourth - timedelta(days=(fourth.weekday() - self.week_start) % 7)

    def week_of(self, day: date) -> tuple[int, int, int]:
        """(year, week, weeks in that year): week 1 is the first with 4 days or more of its year."""
        week_start = day - timedelta(days=(day.weekday() - self.week_start) % 7)
        year = (week_start + timedelta(days=3)).year
        first = self._week_one(year)
        return year, (week_start - first).days // 7 + 1, (self._week_one(year + 1) - first).days // 7

    def rule_year(self, day: date) -> int:
        return self.week_of(day)[0] if self.weeks is not None else day.year

    def keeps(self, day: date) -> bool:
        """Whether ``day`` keeps every day part (BYMONTH, BYWEEKNO, BYYEARDAY, BYMONTHDAY, BYDAY)."""
        if self.months is not None and day.month not in self.months:
            return False
        if self.weeks is not None:
            _, week, weeks = self.week_of(day)
            if week not in self.weeks and week - weeks - 1 not in self.weeks:
                return False
        if self.year_days is not None:
            year_day, length = day.timetuple().tm_yday, 366 if calendar.isleap(day.year) else 365
            if year_day not in self.year_days and year_day - length - 1 not in self.year_days:
                return False
        if self.month_days is not None:
            month_length = calendar.monthrange(day.year, day.month)[1]
            if day.day not in self.month_days and day.day - month_length - 1 not in self.month_days:
                return False
        return self.weekdays is None or any(self._keeps_weekday(day, *entry) for entry in self.weekdays)

    def _keeps_weekday(self, day: date, weekday: int, ordinal: int | None) -> bool:
        if day.weekday() != weekday:
            return False
        if ordinal is None:
            return True
        # Numbered weekdays count in the month when BYMONTH is given, else in the year.
        if self.months is not None:
            first, last = day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
        else:
            first, last = date(day.year, 1, 1), date(day.year, 12, 31)
        return ordinal in ((day - first).days // 7 + 1, -((last - day).days // 7 + 1))

    def days_of(self, year: int) -> Iterator[date]:
        """The days of rule year ``year``, in order (a year's week days can reach into the next and last)."""
        first = date(year, 1, 1) - timedelta(days=7)
        for offset in range(382):
            day = first + timedelta(days=offset)
            if self.rule_year(day) == year and self.keeps(day):
                yield day

    def walls_of(self, year: int) -> list[datetime]:
        walls = [datetime.combine(day, clock) for day in self.days_of(year) for clock in self.times]
        if not self.positions:
            return walls
        chosen = {walls[p - 1 if p > 0 else p] for p in self.positions if 0 < abs(p) <= len(walls)}
        return sorted(chosen)


def yearly_by_the_book(
    rule: str,
    *,
    start: datetime,
    zone: str,
    until_year: int,
    count: int | None = None,
    until: datetime | None = None,
    exdates: tuple[datetime, ...] = (),
    rdates: tuple[datetime, ...] = (),
) -> list[int]:
    """The occurrences of a YEARLY rule from ``start`` (wall time) through rule year ``until_year``,
    as epoch milliseconds (instants: aware datetimes of one zone compare by wall time, PEP 495).

    Wall times are placed as our policy says (docs/RECURRENCE.md, "Time zones"): a time in a gap
    moves forward by the gap, an ambiguous one is its first instant (PEP 495's fold=0).
    """
    reading = YearlyRule.read(rule, start=start)
    tz = ZoneInfo(zone)
    first = _instant(start, tz)
    found: set[int] = set()
    for year in range(start.year, until_year + 1, reading.interval):
        found.update(instant for wall in reading.walls_of(year) if (instant := _instant(wall, tz)) >= first)
    ordered = sorted(found)
    if count is not None:
        ordered = ordered[:count]
    if until is not None:
        ordered = [instant for instant in ordered if instant <= until.timestamp() * 1000]
    # RDATEs join after COUNT and UNTIL, which belong to the rule; EXDATE removes from both.
    ordered = sorted({*ordered, *(instant for rdate in rdates if (instant := _instant(rdate, tz)) >= first)})
    excluded = {_instant(exdate, tz) for exdate in exdates}
    return [instant for instant in ordered if instant not in excluded]


def _instant(wall: datetime, zone: ZoneInfo) -> int:
    return int(wall.replace(tzinfo=zone).timestamp() * 1000)
