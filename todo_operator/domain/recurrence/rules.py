"""Reading RRULE text (RFC 5545 §3.3.10) into a typed, validated rule.

We parse the text ourselves instead of handing it to ``dateutil.rrule.rrulestr``
because users deserve errors that name the part and the allowed range
("BYMONTHDAY must be between -31 and 31, got 40"), because the limits of
:class:`Limits` are checked here before any expansion runs, and because the
rule must be shown back in one canonical spelling (``Recurrence.rule_text``).
Nothing here knows about time zones or dateutil.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, time, timedelta
from typing import Final, Literal

Frequency = Literal["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]

# Coarsest first, as RFC 5545 lists them; the index orders them.
FREQUENCIES: Final[tuple[Frequency, ...]] = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY")
WEEKDAYS: Final[tuple[str, ...]] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

MAX_INTERVAL: Final = 10_000


class ScheduleError(ValueError):
    """A schedule that cannot be used, with a message meant for the person who wrote it."""


class ScheduleTooCostly(ScheduleError):
    """A rule whose occurrences take more work to find than ``Limits.max_compile_work`` allows."""

    def __init__(self, message: str, *, work: int) -> None:
        super().__init__(message)
        self.work = work  # the work units spent when the compile stopped


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    """What one schedule may cost: the seed's "RRULE injection" limits.

    ``search_horizon`` (``sub_daily_search_horizon`` for HOURLY and MINUTELY
    rules) is the longest stretch searched for the next occurrence:
    a rule that produces nothing within it (from the start, or after any
    occurrence) is treated as ended, and a rule that produces nothing at all
    within it from its start is refused at compile time.

    ``max_compile_work`` bounds what one compile may cost, however the search
    goes: a valid rule whose checks (its first occurrence, the spacing sample,
    its COUNT-th occurrence) need more work is refused with
    :class:`ScheduleTooCostly`. It counts work units (about 0.1 µs of CPU each
    on the reference machine) rather than reading a clock: a timer would
    refuse a rule on a busy replica and accept it on an idle one, and a
    RecurringTask would flip between Ready and not with the load; counted
    work gives the same answer on every replica, on every run.
    """

    max_rule_length: int = 512
    min_spacing: timedelta = timedelta(minutes=5)
    max_count: int = 10_000
    max_until_after_start: timedelta = timedelta(days=36_525)  # 100 years
    search_horizon: timedelta = timedelta(days=366 * 30)
    # HOURLY and MINUTELY rules are scanned period by period, much more slowly per year, and
    # one that is silent for years is most likely a mistake: a shorter horizon (still longer
    # than the four years between two 29 Februaries).
    sub_daily_search_horizon: timedelta = timedelta(days=366 * 4 + 7)
    # How many of the first occurrences the spacing check looks at (besides the times of day).
    spacing_sample: int = 128
    # About 75 ms of CPU (expansion.WorkMeter). FREQ=DAILY;COUNT=10000, the costliest ordinary
    # rule found, takes 470,000; FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57 would take 3.3 M.
    max_compile_work: int = 750_000

    @classmethod
    def engine_only(cls) -> Limits:
        """The engine's own bounds, without the operator's policy on how close occurrences may be.

        For seeing what a rule means (``todo-operator preview --limits none``, the
        differential test against another engine): any spacing and any number of
        times a day. Still bounded, as every expansion must be: the rule's length,
        COUNT, UNTIL, the search horizons and the compile's work budget.
        """
        return cls(min_spacing=timedelta(0))


@dataclasses.dataclass(frozen=True, kw_only=True)
class WeekdayRule:
    """One BYDAY entry: a weekday (0 = Monday) and an optional ordinal (``-1FR`` = last Friday)."""

    weekday: int
    ordinal: int | None = None

    def text(self) -> str:
        prefix = "" if self.ordinal is None else str(self.ordinal)
        return f"{prefix}{WEEKDAYS[self.weekday]}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """A parsed RRULE. Empty tuples mean "not given"; dates and times are not resolved yet."""

    frequency: Frequency
    interval: int = 1
    count: int | None = None
    # An UNTIL in UTC ("...Z") is an instant; without "Z" it is wall-clock time in the schedule's
    # zone; a DATE means "through the end of that day" (RFC 5545 allows DATE values here).
    until_utc: datetime | None = None
    until_wall: datetime | None = None
    by_second: tuple[int, ...] = ()
    by_minute: tuple[int, ...] = ()
    by_hour: tuple[int, ...] = ()
    by_day: tuple[WeekdayRule, ...] = ()
    by_month_day: tuple[int, ...] = ()
    by_year_day: tuple[int, ...] = ()
    by_week_number: tuple[int, ...] = ()
    by_month: tuple[int, ...] = ()
    by_set_position: tuple[int, ...] = ()
    week_start: int | None = None  # None: Monday, the RFC default

    @property
    def frequency_rank(self) -> int:
        return FREQUENCIES.index(self.frequency)

    def text(self) -> str:
        """The canonical RRULE spelling (no "RRULE:" prefix), parts in RFC order."""
        parts = [f"FREQ={self.frequency}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if self.until_utc is not None:
            parts.append(f"UNTIL={self.until_utc:%Y%m%dT%H%M%S}Z")
        elif self.until_wall is not None:
            parts.append(f"UNTIL={self.until_wall:%Y%m%dT%H%M%S}")
        for name, values in (
            ("BYSECOND", self.by_second),
            ("BYMINUTE", self.by_minute),
            ("BYHOUR", self.by_hour),
            ("BYDAY", tuple(day.text() for day in self.by_day)),
            ("BYMONTHDAY", self.by_month_day),
            ("BYYEARDAY", self.by_year_day),
            ("BYWEEKNO", self.by_week_number),
            ("BYMONTH", self.by_month),
            ("BYSETPOS", self.by_set_position),
        ):
            if values:
                parts.append(f"{name}={','.join(str(value) for value in values)}")
        if self.week_start is not None:
            parts.append(f"WKST={WEEKDAYS[self.week_start]}")
        return ";".join(parts)


_WEEKDAY_ENTRY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL_VALUE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$")
_INTEGER = re.compile(r"^[+-]?\d{1,6}$")

# name -> (smallest, largest, zero allowed)
_NUMBER_RANGES: Final[dict[str, tuple[int, int, bool]]] = {
    "BYSECOND": (0, 59, True),
    "BYMINUTE": (0, 59, True),
    "BYHOUR": (0, 23, True),
    "BYMONTHDAY": (-31, 31, False),
    "BYYEARDAY": (-366, 366, False),
    "BYWEEKNO": (-53, 53, False),
    "BYMONTH": (1, 12, True),
    "BYSETPOS": (-366, 366, False),
}
_KNOWN_PARTS: Final = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST", *_NUMBER_RANGES})


def parse_rule(text: str, *, limits: Limits) -> Rule:
    """Parse an RRULE value such as ``FREQ=WEEKLY;BYDAY=MO,WE,FR`` (an "RRULE:" prefix is allowed)."""
    if len(text) > limits.max_rule_length:
        raise ScheduleError(
            f"the rule is {len(text)} characters long; at most {limits.max_rule_length} are allowed"
        )
    body = text.strip()
    if body[:6].upper() == "RRULE:":
        body = body[6:]
    values: dict[str, str] = {}
    for raw_part in body.split(";"):
        part = raw_part.strip()
        if not part:
            continue  # a trailing ";" is harmless
        name, equals, value = part.partition("=")
        name = name.strip().upper()
        value = value.strip().upper()
        if not equals or not value:
            raise ScheduleError(f"rule part {part!r} has no value (expected NAME=VALUE)")
        if name not in _KNOWN_PARTS:
            raise ScheduleError(f"unknown rule part {name!r}")
        if name in values:
            raise ScheduleError(f"rule part {name} is given twice")
        values[name] = value
    if "FREQ" not in values:
        raise ScheduleError("the rule has no FREQ (e.g. FREQ=WEEKLY)")
    frequency = _parse_frequency(values["FREQ"])
    rule = Rule(
        frequency=frequency,
        interval=_parse_bounded_integer("INTERVAL", values.get("INTERVAL", "1"), 1, MAX_INTERVAL),
        count=(
            _parse_bounded_integer("COUNT", values["COUNT"], 1, limits.max_count)
            if "COUNT" in values
            else None
        ),
        **_parse_until(values.get("UNTIL")),
        by_second=_parse_numbers("BYSECOND", values.get("BYSECOND")),
        by_minute=_parse_numbers("BYMINUTE", values.get("BYMINUTE")),
        by_hour=_parse_numbers("BYHOUR", values.get("BYHOUR")),
        by_day=_parse_weekdays(values.get("BYDAY"), frequency=frequency),
        by_month_day=_parse_numbers("BYMONTHDAY", values.get("BYMONTHDAY")),
        by_year_day=_parse_numbers("BYYEARDAY", values.get("BYYEARDAY")),
        by_week_number=_parse_numbers("BYWEEKNO", values.get("BYWEEKNO")),
        by_month=_parse_numbers("BYMONTH", values.get("BYMONTH")),
        by_set_position=_parse_numbers("BYSETPOS", values.get("BYSETPOS")),
        week_start=_parse_weekday_name("WKST", values["WKST"]) if "WKST" in values else None,
    )
    _check_combinations(rule)
    return rule


def every_rule(*, every: str, interval: int) -> Rule:
    """The RRULE that the simple form ``every: weekly, interval: 2`` means."""
    frequency = every.upper()
    if frequency not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        raise ScheduleError(f"every must be one of daily, weekly, monthly, yearly; got {every!r}")
    if not 1 <= interval <= MAX_INTERVAL:
        raise ScheduleError(f"interval must be between 1 and {MAX_INTERVAL}, got {interval}")
    return Rule(frequency=_parse_frequency(frequency), interval=interval)


def _parse_frequency(value: str) -> Frequency:
    if value == "SECONDLY":
        raise ScheduleError("FREQ=SECONDLY is not supported: occurrences must be minutes apart")
    for frequency in FREQUENCIES:
        if value == frequency:
            return frequency
    raise ScheduleError(f"FREQ must be one of {', '.join(FREQUENCIES)}; got {value!r}")


def _parse_bounded_integer(name: str, value: str, smallest: int, largest: int) -> int:
    if not _INTEGER.match(value):
        raise ScheduleError(f"{name} must be a whole number, got {value!r}")
    number = int(value)
    if not smallest <= number <= largest:
        raise ScheduleError(f"{name} must be between {smallest} and {largest}, got {number}")
    return number


def _parse_numbers(name: str, value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    smallest, largest, zero_allowed = _NUMBER_RANGES[name]
    numbers: list[int] = []
    for item in value.split(","):
        number = _parse_bounded_integer(name, item.strip(), smallest, largest)
        if number == 0 and not zero_allowed:
            raise ScheduleError(f"{name} must be between {smallest} and {largest} and not 0, got 0")
        if number not in numbers:
            numbers.append(number)
    return tuple(numbers)


def _parse_weekday_name(name: str, value: str) -> int:
    if value not in WEEKDAYS:
        raise ScheduleError(f"{name} must be one of {', '.join(WEEKDAYS)}, got {value!r}")
    return WEEKDAYS.index(value)


def _parse_weekdays(value: str | None, *, frequency: Frequency) -> tuple[WeekdayRule, ...]:
    if value is None:
        return ()
    entries: list[WeekdayRule] = []
    for item in value.split(","):
        match = _WEEKDAY_ENTRY.match(item.strip())
        if match is None:
            raise ScheduleError(f"BYDAY entries look like MO, 1MO or -1FR; got {item.strip()!r}")
        ordinal = int(match.group(1)) if match.group(1) else None
        if ordinal is not None:
            if frequency not in ("MONTHLY", "YEARLY"):
                raise ScheduleError(
                    f"BYDAY={item.strip()}: a numbered weekday needs FREQ=MONTHLY or FREQ=YEARLY"
                )
            largest = 5 if frequency == "MONTHLY" else 53
            if ordinal == 0 or not -largest <= ordinal <= largest:
                raise ScheduleError(
                    f"BYDAY={item.strip()}: the number must be between -{largest} and {largest} and not 0"
                    f" with FREQ={frequency}"
                )
        entry = WeekdayRule(weekday=WEEKDAYS.index(match.group(2)), ordinal=ordinal)
        if entry not in entries:
            entries.append(entry)
    return tuple(entries)


def _parse_until(value: str | None) -> dict[str, datetime | None]:
    if value is None:
        return {}
    match = _UNTIL_VALUE.match(value)
    if match is None:
        raise ScheduleError(
            f"UNTIL must look like 20261231, 20261231T235959 or 20261231T235959Z; got {value!r}"
        )
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        day_value = date(int(year), int(month), int(day))
        if hour is None:
            return {"until_wall": datetime.combine(day_value, time(23, 59, 59))}
        moment = datetime.combine(day_value, time(int(hour), int(minute), int(second)))
    except ValueError as error:
        raise ScheduleError(f"UNTIL={value} is not a valid date: {error}") from None
    return {"until_utc": moment} if utc else {"until_wall": moment}


def _check_combinations(rule: Rule) -> None:
    """The "MUST NOT" combinations of RFC 5545 §3.3.10, which dateutil silently accepts."""
    if rule.count is not None and (rule.until_utc or rule.until_wall):
        raise ScheduleError("COUNT and UNTIL cannot both be given (RFC 5545)")
    if rule.by_month_day and rule.frequency == "WEEKLY":
        raise ScheduleError("BYMONTHDAY cannot be used with FREQ=WEEKLY")
    if rule.by_year_day and rule.frequency in ("MONTHLY", "WEEKLY", "DAILY"):
        raise ScheduleError(f"BYYEARDAY cannot be used with FREQ={rule.frequency}")
    if rule.by_week_number and rule.frequency != "YEARLY":
        raise ScheduleError("BYWEEKNO can only be used with FREQ=YEARLY")
    if rule.by_week_number and any(day.ordinal is not None for day in rule.by_day):
        raise ScheduleError("BYDAY cannot have numbered weekdays (like 1MO) together with BYWEEKNO")
    if rule.by_set_position and rule.by_week_number:
        # Not an RFC rule: our expansion (dateutil) picks BYSETPOS's positions within calendar
        # years, while a BYWEEKNO year begins and ends with its weeks. Refused, never a wrong date.
        raise ScheduleError(
            "BYSETPOS together with BYWEEKNO is not supported (the positions would be counted in"
            " calendar years, not in the weeks of the year); list the days with BYDAY instead"
        )
    if rule.by_set_position and not (
        rule.by_second
        or rule.by_minute
        or rule.by_hour
        or rule.by_day
        or rule.by_month_day
        or rule.by_year_day
        or rule.by_week_number
        or rule.by_month
    ):
        raise ScheduleError("BYSETPOS needs another BYxxx part to select from (e.g. BYDAY=MO,TU;BYSETPOS=1)")
