"""RRULE bombs: how long the operator takes to refuse a schedule written to make it work hard.

Run alone: ``.venv/bin/python benchmarks/rrule_bombs.py [--repeat 7] [--markdown] [--calibrate]``.

Every rule goes through what the operator does with a RecurringTask's
schedule (``reconciling.RecurringTaskReconciler.reconcile``): the spec's model
validation, ``Recurrence.compile`` with the operator's limits, then the first
occurrence (``occurrences.first_due``). For each it prints who refused it
(the model, i.e. also the CRD schema; the recurrence engine; or nobody), the
median and the maximum wall-clock time of ``--repeat`` runs, the ratio
to a benign weekly rule measured in the same run, and the work units the
compile counted (``Limits.max_compile_work``; "budget" in the refused-by
column is a rule refused because its checks cost more).

``--calibrate`` checks the work units against the CPU they stand for: for
each rule, compiled with an unlimited budget, the CPU time per 0.1 µs-unit
(``expansion.UNITS_PER_MILLISECOND``). The weights in ``expansion.work_cost``
are set so that no rule is far above 1 (counted work must not undercount).

Target (issue #10): every bomb refused in under 10 ms. Nothing is asserted:
the table says, and docs/PERFORMANCE.md ("RRULE bombs") records a run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from todo_operator.domain import occurrences, recurrence, resources
from todo_operator.domain.recurrence import expansion

START = "2026-01-01T09:00"  # a Thursday
ZONE = "Europe/Berlin"
CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
# What the operator builds from its settings (min_occurrence_spacing_minutes=5).
LIMITS = recurrence.Limits(min_spacing=timedelta(minutes=5))
TARGET_MS = 10.0

_EVERY_HOUR = ",".join(str(hour) for hour in range(24))
_EVERY_MINUTE = ",".join(str(minute) for minute in range(60))


@dataclass(frozen=True)
class Bomb:
    family: str
    rule: str
    note: str = ""


BASELINE = Bomb("baseline", "FREQ=WEEKLY;BYDAY=MO,WE,FR", "benign: three days a week")
BOMBS = [
    # Rules that never produce an occurrence: the engine must not scan to the year 9999.
    Bomb("never matches", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "30 February"),
    Bomb("never matches", "FREQ=YEARLY;BYMONTH=4,6,9,11;BYMONTHDAY=31", "31st of 30-day months"),
    Bomb("never matches", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "30 February, scanned daily"),
    Bomb(
        "never matches", "FREQ=MINUTELY;INTERVAL=5;BYMONTH=2;BYMONTHDAY=30", "30 February, scanned by minutes"
    ),
    Bomb("never matches", "FREQ=MONTHLY;INTERVAL=12;BYMONTH=3", "always January from a January start"),
    Bomb("never matches", "FREQ=DAILY;INTERVAL=7;BYDAY=TU", "every 7 days from a Thursday"),
    Bomb("never matches", "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", "2nd of 1 candidate a week"),
    Bomb("never matches", "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=366", ""),
    Bomb("never matches", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "6th Monday of a month"),
    Bomb("never matches", "FREQ=MONTHLY;BYMONTHDAY=31;BYSETPOS=2", ""),
    Bomb("never matches", "FREQ=YEARLY;BYDAY=MO;BYSETPOS=-366", ""),
    Bomb("never matches", "FREQ=YEARLY;BYWEEKNO=53;BYYEARDAY=366;BYMONTH=2", ""),
    Bomb("never matches", "FREQ=YEARLY;BYWEEKNO=1;BYMONTH=7", "ISO week 1 in July"),
    Bomb("never matches", "FREQ=YEARLY;INTERVAL=10000;BYWEEKNO=48;BYYEARDAY=334", "week-numbering years"),
    Bomb("never matches", "FREQ=YEARLY;INTERVAL=10000;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", ""),
    Bomb("never matches", "FREQ=HOURLY;INTERVAL=7;BYDAY=MO;BYHOUR=5", ""),
    Bomb("never matches", "FREQ=HOURLY;INTERVAL=10000;BYHOUR=3", ""),
    Bomb("never matches", "FREQ=MINUTELY;INTERVAL=5;BYSECOND=0;BYSETPOS=2", ""),
    Bomb("never matches", "FREQ=MINUTELY;INTERVAL=7;BYHOUR=3;BYMONTH=2;BYMONTHDAY=30", ""),
    # Too dense: more occurrences than the minimum spacing allows.
    Bomb("too dense", "FREQ=SECONDLY", ""),
    Bomb("too dense", "FREQ=MINUTELY;INTERVAL=1", ""),
    Bomb("too dense", "FREQ=MINUTELY;INTERVAL=4", ""),
    Bomb("too dense", "FREQ=HOURLY;BYMINUTE=0,1", ""),
    Bomb("too dense", f"FREQ=DAILY;BYHOUR={_EVERY_HOUR};BYMINUTE={_EVERY_MINUTE}", "1,440 times a day"),
    Bomb(
        "too dense",
        f"FREQ=DAILY;BYHOUR={_EVERY_HOUR};BYMINUTE={_EVERY_MINUTE};BYSECOND={_EVERY_MINUTE}",
        "86,400 times a day, 437 characters",
    ),
    Bomb("too dense", f"FREQ=HOURLY;BYMINUTE={_EVERY_MINUTE};BYSECOND={_EVERY_MINUTE}", "3,600 an hour"),
    Bomb("too dense", f"FREQ=MINUTELY;BYSECOND={_EVERY_MINUTE}", "60 a minute"),
    Bomb("too dense", "FREQ=MINUTELY;BYYEARDAY=318;BYHOUR=21,22", "every minute, but one day a year"),
    # Too long.
    Bomb("too long", "FREQ=DAILY;" + "BYDAY=MO,TU;" * 42, "just over the 512-character limit"),
    Bomb("too long", "FREQ=DAILY;" + "BYMONTHDAY=1;" * 8000, "104,011 characters"),
    # Huge counts and far ends.
    Bomb("COUNT huge", "FREQ=DAILY;COUNT=1000000000", ""),
    Bomb("COUNT huge", "FREQ=DAILY;COUNT=" + "9" * 400, "a 400-digit COUNT"),
    Bomb("COUNT huge", "FREQ=DAILY;COUNT=10001", "one over the limit"),
    Bomb("UNTIL far", "FREQ=MINUTELY;INTERVAL=5;UNTIL=29991231T000000Z", ""),
    Bomb("UNTIL far", "FREQ=DAILY;UNTIL=99991231", ""),
    Bomb("UNTIL far", "FREQ=DAILY;UNTIL=00010101", "before the start"),
    # Absurd numbers.
    Bomb("absurd values", "FREQ=DAILY;INTERVAL=0", ""),
    Bomb("absurd values", "FREQ=DAILY;INTERVAL=" + "9" * 100, ""),
    Bomb("absurd values", "FREQ=YEARLY;BYYEARDAY=367", ""),
    Bomb("absurd values", "FREQ=MONTHLY;BYSETPOS=367;BYDAY=MO", ""),
    Bomb("absurd values", "FREQ=YEARLY;BYDAY=54MO", ""),
    Bomb("absurd values", "FREQ=DAILY;BYDAY=" + ",".join(["MO"] * 150), "one weekday 150 times"),
    # Valid, but expensive: HOURLY/MINUTELY rules with day filters, COUNT at the limit (not bombs by
    # the letter; see docs/PERFORMANCE.md). Those whose checks cost more than the compile budget
    # (Limits.max_compile_work) are refused: "budget".
    Bomb("valid but costly", "FREQ=DAILY;COUNT=10000", "COUNT at the limit: listed once"),
    Bomb("valid but costly", "FREQ=MINUTELY;INTERVAL=7;BYHOUR=3;BYMONTH=2;BYMONTHDAY=29", "first in 2028"),
    Bomb("valid but costly", "FREQ=MINUTELY;INTERVAL=59;BYMONTH=2;BYHOUR=3;BYMINUTE=7", "first in 2029"),
    Bomb("valid but costly", "FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57", "2 a year, 4-year sample"),
    Bomb(
        "valid but costly", "FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57;COUNT=20", "COUNT: 10 years"
    ),
    Bomb("valid but costly", "FREQ=YEARLY;COUNT=10000", "the COUNT-th in the year 9998"),
    Bomb(
        "costly to refuse",
        f"FREQ=HOURLY;BYYEARDAY=366;BYMINUTE={_EVERY_MINUTE};BYSECOND={_EVERY_MINUTE}",
        "3,600 an hour, too dense, but first on 31 Dec 2028",
    ),
]


def operator_path(rule: str, *, limits: recurrence.Limits = LIMITS) -> tuple[str, int | None]:
    """What the RecurringTask reconciler does with a schedule: the outcome as one word, and the work."""
    spec = {
        "schedule": {"rrule": rule, "start": START, "timeZone": ZONE},
        "taskTemplate": {"title": "Bomb", "owner": "mallory@example.com"},
    }
    try:
        model = resources.RecurringTaskSpec.model_validate(spec)
    except ValidationError:
        return "model", None  # the CRD schema says the same (maxLength, pattern): the API server refuses it
    try:
        schedule = recurrence.Recurrence.compile(occurrences.schedule_spec(model.schedule), limits=limits)
    except recurrence.ScheduleTooCostly as error:
        return "budget", error.work  # InvalidSchedule too: its checks cost more than the compile budget
    except recurrence.ScheduleError:
        return "engine", None  # InvalidSchedule in the status, not retried
    occurrences.first_due(schedule, created_at=CREATED_AT)
    return "accepted", schedule.compile_work


def measure(bomb: Bomb, *, repeat: int) -> tuple[str, float, float, float, int | None]:
    """(outcome, median ms, max ms, median CPU ms, work units) over ``repeat`` runs (fewer if slow)."""
    walls: list[float] = []
    cpus: list[float] = []
    outcome, work = "", None
    for _ in range(repeat):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        outcome, work = operator_path(bomb.rule)
        walls.append((time.perf_counter() - wall_start) * 1e3)
        cpus.append((time.process_time() - cpu_start) * 1e3)
        if sum(walls) > 3_000:  # a slow rule needs no more runs to show that it is slow
            break
    return outcome, statistics.median(walls), max(walls), statistics.median(cpus), work


def calibrate(repeat: int) -> None:
    """CPU per work unit, each rule compiled without a budget: the weights must not undercount."""
    unlimited = recurrence.Limits(min_spacing=LIMITS.min_spacing, max_compile_work=1 << 60)
    unit_us = 1_000 / expansion.UNITS_PER_MILLISECOND
    print(f"{'CPU ms':>9} {'work units':>12} {'CPU/unit':>9}  rule  (CPU/unit is in {unit_us:g} µs)")
    for bomb in [BASELINE, *BOMBS, *CALIBRATION]:
        cpus: list[float] = []
        work: int | None = None
        for _ in range(repeat):
            cpu_start = time.process_time()
            _, work = operator_path(bomb.rule, limits=unlimited)
            cpus.append((time.process_time() - cpu_start) * 1e3)
            if sum(cpus) > 3_000:
                break
        if not work:
            continue  # refused before any expansion
        cpu = statistics.median(cpus)
        print(f"{cpu:9.2f} {work:12,} {cpu * 1_000 / unit_us / work:9.2f}  {_shown(bomb.rule)}")


# More shapes for --calibrate: each frequency's costly corners (COUNT at the limit, long scans).
# Rules refused for another reason (too dense, never matching) are left out: they report no work.
CALIBRATION = [
    Bomb("calibration", rule)
    for rule in (
        "FREQ=MONTHLY;COUNT=10000",
        "FREQ=WEEKLY;COUNT=10000",
        "FREQ=DAILY;INTERVAL=10000;COUNT=10000",
        "FREQ=HOURLY;BYHOUR=9;COUNT=10000",
        "FREQ=HOURLY;INTERVAL=10000;COUNT=10000",
        "FREQ=HOURLY;BYMONTHDAY=1;BYHOUR=23",
        "FREQ=HOURLY;BYYEARDAY=366;BYMINUTE=0,30",
        "FREQ=MINUTELY;INTERVAL=5;BYHOUR=23;COUNT=10000",
        "FREQ=MINUTELY;INTERVAL=10000;COUNT=10000",
        "FREQ=MINUTELY;INTERVAL=30;BYYEARDAY=20;BYHOUR=18",
        "FREQ=MINUTELY;BYMONTHDAY=1;BYMINUTE=0",
        "FREQ=MINUTELY;BYMONTHDAY=1;BYHOUR=23;BYMINUTE=0",
        "FREQ=MINUTELY;INTERVAL=7;BYHOUR=23;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=YEARLY;BYDAY=MO;BYSETPOS="
        + ",".join(str(position) for position in range(1, 41))
        + ";COUNT=10000",
    )
]


def _shown(rule: str) -> str:
    return rule if len(rule) <= 70 else f"{rule[:60]}… ({len(rule):,} chars)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per rule (median and max are shown)")
    parser.add_argument(
        "--markdown", action="store_true", help="print a Markdown table (docs/PERFORMANCE.md)"
    )
    parser.add_argument(
        "--calibrate", action="store_true", help="CPU per work unit of each rule, without a budget"
    )
    arguments = parser.parse_args()
    if arguments.calibrate:
        calibrate(arguments.repeat)
        return

    load_before = os.getloadavg()[0]
    for _ in range(3):  # warm up: imports, zone data, pydantic and dateutil caches
        operator_path(BASELINE.rule)
        operator_path(BOMBS[0].rule)
    _, baseline_ms, _, _, _ = measure(BASELINE, repeat=max(arguments.repeat, 21))
    rows = [(bomb, *measure(bomb, repeat=arguments.repeat)) for bomb in BOMBS]
    load_after = os.getloadavg()[0]

    print(
        f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, "
        f"load average {load_before:.2f} before, {load_after:.2f} after"
    )
    print(
        f"start {START} {ZONE}; baseline {BASELINE.rule}: "
        f"{baseline_ms:.2f} ms median (compile + first occurrence)"
    )
    over = [row for row in rows if row[1] != "accepted" and row[3] >= TARGET_MS]
    if arguments.markdown:
        print("\n| family | rule | refused by | median ms | max ms | × baseline | work units | note |")
        print("|---|---|---|---:|---:|---:|---:|---|")
        for bomb, outcome, median_ms, max_ms, _, work in rows:
            ratio = median_ms / baseline_ms
            print(
                f"| {bomb.family} | `{_shown(bomb.rule)}` | {outcome} | {median_ms:.2f} | {max_ms:.2f} "
                f"| {ratio:.1f} | {_work(work)} | {bomb.note} |"
            )
    else:
        print(
            f"\n{'family':17} {'refused by':10} {'median':>9} {'max':>9} {'CPU':>9} {'×base':>7}"
            f" {'work':>10}  rule"
        )
        for bomb, outcome, median_ms, max_ms, cpu_ms, work in rows:
            ratio = median_ms / baseline_ms
            print(
                f"{bomb.family:17} {outcome:10} {median_ms:8.2f}ms {max_ms:8.2f}ms {cpu_ms:8.2f}ms "
                f"{ratio:7.1f} {_work(work):>10}  "
                f"{_shown(bomb.rule)}"
            )
    refused = [row for row in rows if row[1] != "accepted"]
    print(
        f"\n{len(refused)} of {len(rows)} rules refused; "
        f"{len(refused) - len(over)} of them in under {TARGET_MS:g} ms"
        f" (median); over: {', '.join(_shown(row[0].rule) for row in over) or 'none'}"
    )


def _work(units: int | None) -> str:
    return "" if units is None else f"{units:,}"


if __name__ == "__main__":
    main()
