"""Our engine against an independent one, on 10,000 generated rules a run.

The oracle is rrule-temporal (tests/oracle/expand.mjs, run by the machine's
Node.js): a TypeScript RFC 5545 engine on the Temporal API that does not
derive from python-dateutil, with Node's own time zone data. Each rule is
drawn from every FREQ and BY* part, INTERVAL, COUNT, UNTIL, negative
positions, BYSETPOS, WKST, EXDATE and RDATE, in IANA zones with DST gaps and
overlaps (and half-hour and 45-minute offsets), with starts near year ends,
leap days and DST changes. Both engines are asked for the first occurrences
as instants. Every disagreement must be one of the documented differences in
docs/RECURRENCE.md ("Checked against another engine"), each of which has a
test of its own below; anything else fails the run, with the rules that
disagree printed for a unit test.

The rules are the same on every run (a fixed seed: a failure is reproducible,
never a flake); ``RECURRENCE_ORACLE_SEED`` and ``RECURRENCE_ORACLE_RULES``
explore others.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests import ROOT
from tests.domain.recurrence import book
from todo_operator.domain.recurrence import Limits, Recurrence, ScheduleError, ScheduleSpec, ScheduleTooCostly

ORACLE = ROOT / "tests" / "oracle"
SEED = int(os.environ.get("RECURRENCE_ORACLE_SEED", "5545"))
RULES = int(os.environ.get("RECURRENCE_ORACLE_RULES", "10000"))
FIRST = 12  # occurrences compared per rule
LIMITS = Limits.engine_only()

ZONES = (
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Sao_Paulo",  # DST at midnight: the gap swallows 00:00
    "America/St_Johns",  # a half-hour offset with DST
    "Australia/Lord_Howe",  # a DST change of 30 minutes
    "Pacific/Chatham",  # +12:45, with DST
    "Asia/Kolkata",
    "Asia/Tehran",
    "Pacific/Apia",  # skipped 30 December 2011
)
WEEKDAYS = book.WEEKDAYS


@dataclasses.dataclass(frozen=True, kw_only=True)
class Case:
    id: int
    rule: str  # without COUNT and UNTIL: those are fields, as in ScheduleSpec
    start: datetime  # wall-clock time in `zone`
    zone: str
    count: int | None
    until: datetime | None  # an instant
    exdates: tuple[datetime, ...]  # wall-clock times in `zone`
    rdates: tuple[datetime, ...] = ()  # wall-clock times in `zone`

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(
            rrule=self.rule,
            start=self.start,
            time_zone=self.zone,
            count=self.count,
            until=self.until,
            exdates=self.exdates,
            rdates=self.rdates,
        )

    def text(self) -> str:
        bounds = f";COUNT={self.count}" if self.count else ""
        bounds += f";UNTIL={self.until:%Y%m%dT%H%M%SZ}" if self.until else ""
        exdates = (
            f" EXDATE {','.join(f'{day:%Y%m%dT%H%M%S}' for day in self.exdates)}" if self.exdates else ""
        )
        rdates = f" RDATE {','.join(f'{day:%Y%m%dT%H%M%S}' for day in self.rdates)}" if self.rdates else ""
        return (
            f"DTSTART;TZID={self.zone}:{self.start:%Y%m%dT%H%M%S} RRULE:{self.rule}{bounds}{exdates}{rdates}"
        )


# --------------------------------------------------------------------------------------- the rules


def _pick(draw: random.Random, values: tuple[Any, ...] | range, low: int = 1, high: int = 3) -> list[Any]:
    return draw.sample(list(values), draw.randint(low, min(high, len(values))))


def _joined(values: list[Any]) -> str:
    return ",".join(map(str, values))


def _start(draw: random.Random) -> datetime:
    year = draw.randint(1995, 2035)
    month, day = draw.choice(
        [
            (draw.randint(1, 12), draw.randint(1, 28)),  # anywhere
            (12, draw.randint(24, 31)),  # the end of a year
            (1, draw.randint(1, 7)),  # the start of one
            (2, draw.choice([28, 29 if year % 4 == 0 else 28])),  # leap days
            (3, draw.randint(24, 31)),  # DST changes in the north (and Lord Howe, Chatham, Tehran)
            (10, draw.randint(24, 31)),
            (11, draw.randint(1, 7)),
            (4, draw.randint(1, 7)),  # and in the south
            (9, draw.randint(20, 30)),
        ]
    )
    hour = draw.choice([0, 1, 2, 3, draw.randint(0, 23)])
    minute = draw.choice([0, 0, 30, 45, draw.randint(0, 59)])
    return datetime(year, month, day, hour, minute, draw.choice([0, 0, 0, 30]))


def _rule(draw: random.Random) -> str:
    frequency = draw.choices(
        ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"), weights=(25, 25, 18, 16, 9, 7)
    )[0]
    sub_daily = frequency in ("HOURLY", "MINUTELY")
    parts = [f"FREQ={frequency}"]
    if draw.random() < 0.5:
        interval = draw.choice([2, 3, 4]) if draw.random() < 0.8 else draw.randint(5, 12)
        if frequency == "MINUTELY":
            # Divisors of an hour: an INTERVAL that never reaches a BYHOUR (FREQ=MINUTELY;INTERVAL=90
            # from 10:13 never lands in hour 12) makes the oracle step through four years of minutes.
            interval = draw.choice([5, 10, 15, 20, 30, 60])
        parts.append(f"INTERVAL={interval}")
    elif frequency == "MINUTELY":
        parts.append("INTERVAL=5")  # MINUTELY with INTERVAL=1 adds nothing but expansion time
    day_parts = False
    if frequency == "YEARLY" and draw.random() < 0.25:
        parts.append("BYWEEKNO=" + _joined(_pick(draw, (1, 2, 10, 20, 26, 52, 53, -1, -2, -53), high=2)))
        day_parts = True
    if draw.random() < (0.45 if frequency == "YEARLY" else 0.15):
        parts.append("BYMONTH=" + _joined(sorted(_pick(draw, range(1, 13)))))
    if frequency == "YEARLY" and "BYWEEKNO" not in parts[-1] and draw.random() < 0.15:
        parts.append(
            "BYYEARDAY=" + _joined(_pick(draw, (1, 2, 59, 60, 100, 200, 365, 366, -1, -100, -366), high=2))
        )
        day_parts = True
    if frequency != "WEEKLY" and draw.random() < 0.35:
        values = (1, 2, 10, 15, 28) if sub_daily else (1, 2, 10, 15, 28, 29, 30, 31, -1, -2, -7, -31)
        parts.append("BYMONTHDAY=" + _joined(_pick(draw, values)))
        day_parts = True
    if draw.random() < 0.45:
        numbered = (
            frequency in ("MONTHLY", "YEARLY") and not any(p.startswith("BYWEEKNO") for p in parts)
        ) and draw.random() < 0.5
        days = _pick(draw, WEEKDAYS)
        if numbered:
            limit = 5 if frequency == "MONTHLY" or any(p.startswith("BYMONTH=") for p in parts) else 53
            days = [f"{draw.choice([1, 1, 2, 3, -1, -1, -2, limit, -limit])}{day}" for day in days]
        parts.append("BYDAY=" + _joined(days))
        day_parts = True
    if (not sub_daily and draw.random() < 0.3) or (frequency == "MINUTELY" and draw.random() < 0.3):
        parts.append("BYHOUR=" + _joined(sorted(_pick(draw, (0, 1, 2, 3, 9, 12, 23)))))
    if frequency != "MINUTELY" and draw.random() < 0.2:
        parts.append("BYMINUTE=" + _joined(sorted(_pick(draw, (0, 15, 30, 45, 59)))))
    if not sub_daily and draw.random() < 0.05:
        parts.append("BYSECOND=" + _joined(sorted(_pick(draw, (0, 30)))))
    if (day_parts or len(parts) > 2) and draw.random() < 0.25 and not sub_daily:
        # Positions a DAILY or WEEKLY period can hold: the oracle would scan 30 years of days for
        # one it never can (we refuse those at once: set_positions_never_match).
        # (YEARLY and MONTHLY: small positions, as a sparse year would be stepped through for centuries.)
        held = 3
        if frequency in ("DAILY", "WEEKLY"):
            held = math.prod(
                len(part.split(",")) for part in parts if part.startswith(("BYHOUR", "BYMINUTE"))
            )
            if frequency == "WEEKLY":
                held *= len(next((part for part in parts if part.startswith("BYDAY")), "BYDAY=").split(","))
        positions = [n for n in (1, 2, 3) if n <= held]
        if len(positions) > (frequency == "DAILY"):  # a DAILY period of one time: nothing to pick
            parts.append("BYSETPOS=" + _joined(_pick(draw, (*positions, *(-n for n in positions)), high=2)))
    if draw.random() < 0.2:
        parts.append(f"WKST={draw.choice(WEEKDAYS)}")
    return ";".join(parts)


def _rdates(draw: random.Random, start: datetime) -> tuple[datetime, ...]:
    """One rule in ten gets extra dates (RDATE), some at the start's time of day, some not.

    Drawn from a stream of their own, so the rules of a seed stay what they were without them.
    """
    if draw.random() >= 0.1:
        return ()
    return tuple(
        start
        + timedelta(days=draw.randint(0, 60), hours=draw.choice([0, 0, 1, 5]), minutes=draw.choice([0, 30]))
        for _ in range(draw.randint(1, 3))
    )


def generate(seed: int, total: int) -> Iterator[Case]:
    draw = random.Random(seed)
    for case_id in range(total):
        start = _start(draw)
        bounds = draw.random()
        count = draw.randint(1, 30) if bounds < 0.15 else None
        until = None
        if 0.15 <= bounds < 0.3:
            until = (start + timedelta(days=draw.randint(1, 2000), hours=draw.randint(0, 23))).replace(
                tzinfo=UTC
            )
        exdates = (
            tuple(start + timedelta(days=draw.randint(0, 40)) for _ in range(draw.randint(1, 3)))
            if draw.random() < 0.1
            else ()
        )
        yield Case(
            id=case_id,
            rule=_rule(draw),
            start=start,
            zone=draw.choice(ZONES),
            count=count,
            until=until,
            exdates=exdates,
            rdates=_rdates(random.Random(seed * 100_003 + case_id), start),
        )


# --------------------------------------------------------------------------------------- both engines


@dataclasses.dataclass(frozen=True)
class Ours:
    instants: list[int] | None  # epoch milliseconds; None: refused
    refusal: str = ""
    horizon_days: int = 0


def horizon_of(case: Case) -> timedelta:
    sub_daily = "FREQ=HOURLY" in case.rule or "FREQ=MINUTELY" in case.rule
    return LIMITS.sub_daily_search_horizon if sub_daily else LIMITS.search_horizon


def ours(case: Case) -> Ours:
    horizon = horizon_of(case)
    try:
        recurrence = Recurrence.compile(case.spec(), limits=LIMITS)
    except ScheduleTooCostly as error:
        return Ours(None, f"too costly: {error}", horizon_days=horizon.days)
    except ScheduleError as error:
        return Ours(None, str(error), horizon_days=horizon.days)
    instants = [int(occurrence.timestamp() * 1000) for occurrence in recurrence.first(FIRST)]
    return Ours(instants, horizon_days=horizon.days)


def _request(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "rule": case.rule,
        "start": case.start.isoformat(),
        "zone": case.zone,
        "n": FIRST,
        "count": case.count,
        "until": None if case.until is None else int(case.until.timestamp() * 1000),
        "exdates": [exdate.isoformat() for exdate in case.exdates],
        "rdates": [rdate.isoformat() for rdate in case.rdates],
        "horizonDays": horizon_of(case).days,
    }


def ask_the_oracle(requests: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (ORACLE / "node_modules" / "rrule-temporal").is_dir():
        pytest.fail("the recurrence oracle is not installed: `make test` runs `npm ci` in tests/oracle")
    process = subprocess.Popen(
        [node, str(ORACLE / "expand.mjs")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(
        "\n".join(json.dumps(request) for request in requests) + "\n", timeout=900
    )
    assert process.returncode == 0, stderr[-3000:]
    answers = [json.loads(line) for line in stdout.splitlines() if line]
    return {answer["id"]: answer for answer in answers}


# --------------------------------------------------------------------------------------- the differences

HORIZON_SLACK = timedelta(days=400)


def beyond_the_horizon(case: Case, mine: Ours, theirs: list[int]) -> bool:
    """Both stop where a rule has been silent for the search horizon (docs/RECURRENCE.md, "Limits"):
    ours counts it in months of calendar scanned, the oracle in exact time, so near the horizon one
    may find an occurrence the other gave up before. One list is then a prefix of the other, and
    the longer one's next occurrence is about a horizon after the last they share."""
    instants = mine.instants or []  # refused: "no occurrence within 30 years after the start"
    shorter, longer = sorted((instants, theirs), key=len)
    if len(shorter) == len(longer) or longer[: len(shorter)] != shorter:
        return False
    start = case.start.replace(tzinfo=UTC).timestamp() * 1000 - 14 * 3600_000
    gap = timedelta(milliseconds=longer[len(shorter)] - (shorter[-1] if shorter else start))
    return gap > timedelta(days=mine.horizon_days) - HORIZON_SLACK


def the_oracle_misreads_a_yearly_rule(case: Case, mine: Ours, theirs: list[int]) -> bool:
    """rrule-temporal 2.2.8, in a YEARLY rule with BYWEEKNO, BYYEARDAY or a numbered BYDAY, ignores
    the other day parts (BYMONTHDAY, BYYEARDAY, BYDAY: it takes the start's weekday instead), and
    takes -53TH in a year of 52 Thursdays as its last one; RFC 5545 §3.3.10 applies every BY* part.
    For rules of that shape the arbiter is the RFC read by the book (book.py): the case is this one
    when ours is exactly what the book gives."""
    parts = book.parts_of(case.rule)
    numbered = any(entry[:-2] for entry in parts.get("BYDAY", []))
    if parts["FREQ"] != ["YEARLY"] or not ({"BYWEEKNO", "BYYEARDAY"} & parts.keys() or numbered):
        return False
    instants = mine.instants or []
    # Through the rule year after the last of ours (a December day can be in the next year's week 1),
    # and when ours ended early, far enough to see where its search stopped.
    last_year = (
        datetime.fromtimestamp(instants[-1] / 1000, tz=ZoneInfo(case.zone)).year + 1
        if instants
        else case.start.year
    )
    if len(instants) < FIRST:
        last_year += mine.horizon_days // 365 + 2
    by_the_book = book.yearly_by_the_book(
        case.rule,
        start=case.start,
        zone=case.zone,
        until_year=last_year,
        count=case.count,
        until=case.until,
        exdates=case.exdates,
        rdates=case.rdates,
    )[:FIRST]
    return instants == by_the_book or beyond_the_horizon(case, mine, by_the_book)


def a_rule_without_occurrences_is_refused_rdates_or_not(case: Case, mine: Ours, theirs: list[int]) -> bool:
    """We refuse a schedule whose rule has no occurrence (within the horizon, or before UNTIL), even
    when it has rdates (docs/RECURRENCE.md, "Extra dates"): the oracle's times are then its rdates alone."""
    if mine.instants is not None or not case.rdates:
        return False
    if "produces no occurrence" not in mine.refusal and "before its first occurrence" not in mine.refusal:
        return False
    zone = ZoneInfo(case.zone)
    rdates = {int(rdate.replace(tzinfo=zone).timestamp() * 1000) for rdate in case.rdates}
    # What else the oracle gives must be its misreading of the rule (checked as above, by the book).
    rest = [instant for instant in theirs if instant not in rdates]
    return not rest or the_oracle_misreads_a_yearly_rule(dataclasses.replace(case, rdates=()), mine, rest)


# What we refuse on purpose (docs/RECURRENCE.md): counted, not compared.
ACCEPTED = ("too costly for us", "refused: BYSETPOS with BYWEEKNO")
# A documented difference: a name, where docs/RECURRENCE.md explains it, and whether a case is one.
KNOWN: dict[str, Callable[[Case, Ours, list[int]], bool]] = {
    "search horizon": beyond_the_horizon,
    "the oracle misreads a yearly rule": the_oracle_misreads_a_yearly_rule,
    "refused: a rule without occurrences, rdates or not": a_rule_without_occurrences_is_refused_rdates_or_not,
}


def classify(case: Case, mine: Ours, answer: dict[str, Any]) -> str | None:
    """None when both agree; else the documented difference it is, or "unexplained"."""
    if "error" in answer:
        return f"oracle error: {answer['error']}"
    theirs: list[int] = answer["instants"]
    if mine.instants is None and mine.refusal.startswith("too costly"):
        return "too costly for us"
    if mine.instants is None and mine.refusal.startswith("BYSETPOS together with BYWEEKNO"):
        return "refused: BYSETPOS with BYWEEKNO"
    if (mine.instants or []) == theirs:
        return None  # the same times, or refused as never matching and the oracle finds none
    for name, matches in KNOWN.items():
        if matches(case, mine, theirs):
            return name
    return "unexplained"


def _show(instants: list[int] | None, zone: str) -> str:
    if instants is None:
        return "refused"
    return " ".join(
        f"{datetime.fromtimestamp(instant / 1000, tz=ZoneInfo(zone)):%Y-%m-%d %H:%M%z}"
        for instant in instants[:6]
    )


def _example(case: Case, mine: Ours, answer: dict[str, Any]) -> str:
    return (
        f"{case.text()}\n    ours:   {_show(mine.instants, case.zone)} {mine.refusal[:120]}"
        f"\n    oracle: {_show(answer.get('instants'), case.zone)} {answer.get('error', '')}"
    )


@pytest.mark.timeout(600)
def test_our_engine_agrees_with_an_independent_one() -> None:
    cases = list(generate(SEED, RULES))
    # The oracle (Node.js) works while we compute ours: two processes, two cores.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answers = pool.submit(ask_the_oracle, [_request(case) for case in cases])
        mine = {case.id: ours(case) for case in cases}
        results = answers.result()

    classes: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    for case in cases:
        verdict = classify(case, mine[case.id], results[case.id]) or "agree"
        classes[verdict] += 1
        if verdict != "agree" and len(examples[verdict]) < 8:
            examples[verdict].append(_example(case, mine[case.id], results[case.id]))
    print(f"\n{len(cases)} rules compared (seed {SEED}):")
    print("\n".join(f"  {name}: {number}" for name, number in classes.most_common()))
    unexplained = {
        name: number for name, number in classes.items() if name not in ("agree", *KNOWN, *ACCEPTED)
    }
    assert not unexplained, f"{unexplained}\n" + "\n".join(
        line for name in unexplained for line in examples[name]
    )
    assert classes["agree"] >= 0.9 * len(cases), classes  # the generator still makes rules both engines read


# --------------------------------------------------------------------------------------- each difference


def _case(rule: str, start: str, zone: str = "UTC", **bounds: Any) -> Case:
    return Case(
        id=0,
        rule=rule,
        start=datetime.fromisoformat(start),
        zone=zone,
        count=bounds.get("count"),
        until=bounds.get("until"),
        exdates=(),
    )


def _days(instants: list[int] | None) -> list[str]:
    return [f"{datetime.fromtimestamp(instant / 1000, tz=UTC):%Y-%m-%d}" for instant in instants or []]


@pytest.mark.parametrize(
    ("rule", "start", "ours_by_the_book", "the_oracles"),
    [
        # BYMONTHDAY ignored beside a numbered BYDAY: the first Tuesday that is also a 1st.
        (
            "FREQ=YEARLY;BYMONTHDAY=1;BYDAY=1TU",
            "2011-01-01T09:00",
            ["2013-01-01", "2019-01-01"],
            "2011-01-04",
        ),
        # -53TH in a year of 52 Thursdays taken as the last Thursday.
        ("FREQ=YEARLY;BYDAY=-53TH", "2011-01-01T09:00", ["2015-01-01", "2020-01-02"], "2011-12-29"),
        # BYMONTHDAY ignored beside BYWEEKNO (the start's weekday taken instead).
        (
            "FREQ=YEARLY;BYWEEKNO=1;BYMONTHDAY=1",
            "2011-01-01T09:00",
            ["2013-01-01", "2014-01-01"],
            "2011-01-08",
        ),
        # BYDAY ignored beside BYYEARDAY.
        ("FREQ=YEARLY;BYYEARDAY=60;BYDAY=SU", "2029-10-27T09:00", ["2032-02-29", "2037-03-01"], "2030-03-01"),
    ],
)
def test_where_the_oracle_misreads_a_yearly_rule_the_book_says_we_are_right(
    rule: str, start: str, ours_by_the_book: list[str], the_oracles: str
) -> None:
    """The documented difference, shown on one small rule each (docs/RECURRENCE.md, "Checked against
    another engine"). If rrule-temporal is fixed, this fails: then the entry goes."""
    case = _case(rule, start)
    mine = ours(case)
    theirs = ask_the_oracle([_request(case)])[0]["instants"]
    assert _days(mine.instants)[:2] == ours_by_the_book
    assert _days(theirs)[0] == the_oracles
    assert the_oracle_misreads_a_yearly_rule(case, mine, theirs)
    assert classify(case, mine, {"instants": theirs}) == "the oracle misreads a yearly rule"


def test_a_wrong_answer_of_ours_is_not_taken_for_the_oracles_misreading() -> None:
    """The classification is no blanket: ours off by one day, the book disagrees."""
    case = _case("FREQ=YEARLY;BYMONTHDAY=1;BYDAY=1TU", "2011-01-01T09:00")
    mine = ours(case)
    assert mine.instants is not None
    shifted = Ours([instant + 86_400_000 for instant in mine.instants], horizon_days=mine.horizon_days)
    theirs = ask_the_oracle([_request(case)])[0]["instants"]
    assert not the_oracle_misreads_a_yearly_rule(case, shifted, theirs)
    assert classify(case, shifted, {"instants": theirs}) == "unexplained"


@pytest.mark.parametrize(
    ("rule", "start", "expected"),
    [
        # RFC 5545 §3.8.5.3's YEARLY examples (DTSTART in America/New_York there; wall dates here).
        ("FREQ=YEARLY;BYDAY=20MO", "1997-05-19T09:00", ["1997-05-19", "1998-05-18", "1999-05-17"]),
        ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "1997-05-12T09:00", ["1997-05-12", "1998-05-11", "1999-05-17"]),
        ("FREQ=YEARLY;INTERVAL=3;BYYEARDAY=1,100,200", "1997-01-01T09:00", ["1997-01-01", "1997-04-10"]),
        ("FREQ=YEARLY;BYMONTH=3;BYDAY=TH", "1997-03-13T09:00", ["1997-03-13", "1997-03-20", "1997-03-27"]),
        ("FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8", "1996-11-05T09:00",
         ["1996-11-05", "2000-11-07", "2004-11-02"]),
    ],
)  # fmt: skip
def test_the_book_reads_rfc_5545s_own_examples(rule: str, start: str, expected: list[str]) -> None:
    found = book.yearly_by_the_book(rule, start=datetime.fromisoformat(start), zone="UTC", until_year=2005)
    assert _days(found)[: len(expected)] == expected


def test_a_search_ended_near_the_horizon_is_told_from_a_lost_occurrence() -> None:
    case = _case("FREQ=YEARLY;BYWEEKNO=53;INTERVAL=3;BYDAY=TH", "2026-06-01T09:00")
    horizon = LIMITS.search_horizon.days
    shared = [int(datetime(2026, 12, 31, 9, tzinfo=UTC).timestamp() * 1000)]
    thirty_three_years_on = int(datetime(2059, 12, 31, 9, tzinfo=UTC).timestamp() * 1000)
    one_year_on = int(datetime(2027, 12, 31, 9, tzinfo=UTC).timestamp() * 1000)
    assert beyond_the_horizon(case, Ours(shared, horizon_days=horizon), [*shared, thirty_three_years_on])
    assert beyond_the_horizon(case, Ours([*shared, thirty_three_years_on], horizon_days=horizon), shared)
    assert not beyond_the_horizon(case, Ours(shared, horizon_days=horizon), [*shared, one_year_on])


def test_a_rule_without_occurrences_is_refused_even_with_rdates_while_the_oracle_lists_them() -> None:
    case = dataclasses.replace(
        _case("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "2026-12-07T09:00"), rdates=(datetime(2026, 12, 9, 9),)
    )
    mine = ours(case)
    assert mine.instants is None
    assert "produces no occurrence" in mine.refusal
    theirs = ask_the_oracle([_request(case)])[0]["instants"]
    assert _days(theirs) == ["2026-12-09"]
    assert classify(case, mine, {"instants": theirs}) == "refused: a rule without occurrences, rdates or not"
    # An oracle time that is not an rdate (nor the oracle's misreading) is not explained away.
    assert classify(case, mine, {"instants": [*theirs, theirs[0] + 86_400_000]}) == "unexplained"
