"""RRULE bombs: how long the operator takes to refuse a schedule written to make it work hard.

Run alone: ``.venv/bin/python benchmarks/rrule_bombs.py [--repeat 7] [--markdown]``.

Every rule goes through what the operator does with a RecurringTask's
schedule (``reconciling.RecurringTaskReconciler.reconcile``): the spec's model
validation, ``Recurrence.compile`` with the operator's limits, then the first
occurrence (``occurrences.first_due``). For each it prints who refused it
(the model, i.e. also the CRD schema; the recurrence engine; or nobody), the
median and the maximum wall-clock time of ``--repeat`` runs, and the ratio
to a benign weekly rule measured in the same run.

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
    # Valid and accepted, but expensive: HOURLY/MINUTELY rules with day filters (not bombs by the
    # letter, listed because they cost more than any refusal; see docs/PERFORMANCE.md).
    Bomb("valid but costly", "FREQ=DAILY;COUNT=10000", "COUNT at the limit: listed once"),
    Bomb("valid but costly", "FREQ=MINUTELY;INTERVAL=7;BYHOUR=3;BYMONTH=2;BYMONTHDAY=29", "first in 2028"),
    Bomb("valid but costly", "FREQ=MINUTELY;INTERVAL=59;BYMONTH=2;BYHOUR=3;BYMINUTE=7", "first in 2029"),
    Bomb("valid but costly", "FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57", "2 a year, 4-year sample"),
]


def operator_path(rule: str) -> str:
    """What the RecurringTask reconciler does with a schedule; the outcome as one word."""
    spec = {
        "schedule": {"rrule": rule, "start": START, "timeZone": ZONE},
        "taskTemplate": {"title": "Bomb", "owner": "mallory@example.com"},
    }
    try:
        model = resources.RecurringTaskSpec.model_validate(spec)
    except ValidationError:
        return "model"  # the CRD schema says the same (maxLength, pattern): the API server refuses it
    try:
        schedule = recurrence.Recurrence.compile(occurrences.schedule_spec(model.schedule), limits=LIMITS)
    except recurrence.ScheduleError:
        return "engine"  # InvalidSchedule in the status, not retried
    occurrences.first_due(schedule, created_at=CREATED_AT)
    return "accepted"


def measure(bomb: Bomb, *, repeat: int) -> tuple[str, float, float, float]:
    """(outcome, median ms, max ms, median CPU ms) over ``repeat`` runs (fewer for very slow rules)."""
    walls: list[float] = []
    cpus: list[float] = []
    outcome = ""
    for _ in range(repeat):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        outcome = operator_path(bomb.rule)
        walls.append((time.perf_counter() - wall_start) * 1e3)
        cpus.append((time.process_time() - cpu_start) * 1e3)
        if sum(walls) > 3_000:  # a slow rule needs no more runs to show that it is slow
            break
    return outcome, statistics.median(walls), max(walls), statistics.median(cpus)


def _shown(rule: str) -> str:
    return rule if len(rule) <= 70 else f"{rule[:60]}… ({len(rule):,} chars)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per rule (median and max are shown)")
    parser.add_argument(
        "--markdown", action="store_true", help="print a Markdown table (docs/PERFORMANCE.md)"
    )
    arguments = parser.parse_args()

    load_before = os.getloadavg()[0]
    for _ in range(3):  # warm up: imports, zone data, pydantic and dateutil caches
        operator_path(BASELINE.rule)
        operator_path(BOMBS[0].rule)
    _, baseline_ms, _, _ = measure(BASELINE, repeat=max(arguments.repeat, 21))
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
        print("\n| family | rule | refused by | median ms | max ms | × baseline | note |")
        print("|---|---|---|---:|---:|---:|---|")
        for bomb, outcome, median_ms, max_ms, _ in rows:
            ratio = median_ms / baseline_ms
            print(
                f"| {bomb.family} | `{_shown(bomb.rule)}` | {outcome} | {median_ms:.2f} | {max_ms:.2f} "
                f"| {ratio:.1f} | {bomb.note} |"
            )
    else:
        print(f"\n{'family':17} {'refused by':10} {'median':>9} {'max':>9} {'CPU':>9} {'×base':>7}  rule")
        for bomb, outcome, median_ms, max_ms, cpu_ms in rows:
            ratio = median_ms / baseline_ms
            print(
                f"{bomb.family:17} {outcome:10} {median_ms:8.2f}ms {max_ms:8.2f}ms {cpu_ms:8.2f}ms "
                f"{ratio:7.1f}  "
                f"{_shown(bomb.rule)}"
            )
    refused = [row for row in rows if row[1] != "accepted"]
    print(
        f"\n{len(refused)} of {len(rows)} rules refused; "
        f"{len(refused) - len(over)} of them in under {TARGET_MS:g} ms"
        f" (median); over: {', '.join(_shown(row[0].rule) for row in over) or 'none'}"
    )


if __name__ == "__main__":
    main()
