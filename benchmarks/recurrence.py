"""How much "next occurrence after now" costs, and that it does not grow with the past.

Run alone on an idle machine: ``.venv/bin/python benchmarks/recurrence.py``.
Writes ``benchmarks/results/recurrence.json`` and the plot ``docs/images/recurrence.png``.
For daily, weekly and monthly rules started yesterday and ten years ago it
prints the median cost of:

* ``next_after(now)`` on a compiled schedule (what the operator asks);
* ``compile + next_after(now)`` (a schedule seen for the first time);
* naive ``dateutil.rrule.rrule(...).after(now)`` from the start, for comparison.

Targets (docs/PERFORMANCE.md): ten-year / yesterday ratio <= 2, and <= 20 us
median for daily and weekly rules on a compiled schedule. "now" is a fixed
instant so runs are comparable.
"""

from __future__ import annotations

import functools
import pathlib
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import plotting
from dateutil import rrule as dateutil_rrule

from todo_operator.domain.recurrence import Recurrence, ScheduleError, ScheduleSpec

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
ZONE = "Europe/Berlin"
TARGET_US = 20  # median next_after on a compiled daily or weekly schedule
RULES: dict[str, tuple[str, Literal[0, 1, 2, 3], dict[str, Any]]] = {
    "daily": ("FREQ=DAILY", dateutil_rrule.DAILY, {}),
    "weekly": ("FREQ=WEEKLY;BYDAY=MO,WE,FR", dateutil_rrule.WEEKLY, {"byweekday": (0, 2, 4)}),
    "monthly": ("FREQ=MONTHLY;BYDAY=-1FR", dateutil_rrule.MONTHLY, {"byweekday": dateutil_rrule.FR(-1)}),
}
STARTS = {"yesterday": timedelta(days=1), "ten years ago": timedelta(days=3652)}


def batch_seconds(
    call: Callable[[], object], *, repeat: int = 9, budget: float = 0.2
) -> tuple[list[float], list[float]]:
    """Per-call cost in each of `repeat` batches of about `budget` seconds: (wall clock, CPU time).

    CPU time (``time.process_time``) leaves out the time this process waited
    for the CPU, which matters on a shared machine; both are printed.
    """
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(budget / once))
    wall_samples, cpu_samples = [], []
    for _ in range(repeat):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(number):
            call()
        wall_samples.append((time.perf_counter() - wall_start) / number)
        cpu_samples.append((time.process_time() - cpu_start) / number)
    return wall_samples, cpu_samples


def medians(samples: tuple[list[float], list[float]]) -> tuple[float, float]:
    wall_samples, cpu_samples = samples
    return statistics.median(wall_samples), statistics.median(cpu_samples)


def median_seconds(
    call: Callable[[], object], *, repeat: int = 9, budget: float = 0.2
) -> tuple[float, float]:
    """Median per-call cost over `repeat` batches of about `budget` seconds: (wall clock, CPU time)."""
    return medians(batch_seconds(call, repeat=repeat, budget=budget))


def compile_and_ask(spec: ScheduleSpec) -> datetime | None:
    return Recurrence.compile(spec).next_after(NOW)


def dateutil_after(frequency: Literal[0, 1, 2, 3], start: datetime, extra: dict[str, Any]) -> datetime | None:
    return dateutil_rrule.rrule(frequency, dtstart=start, **extra).after(NOW)


NEVER_MATCHING = [
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MINUTELY;INTERVAL=5;BYMONTH=2;BYMONTHDAY=30",
]


def refuse(rule: str) -> None:
    try:
        Recurrence.compile(ScheduleSpec(rrule=rule, start=datetime(2026, 1, 1, 9)))  # noqa: DTZ001 - wall clock
    except ScheduleError:
        return
    raise AssertionError(f"{rule} was accepted")


def show(costs: tuple[float, float]) -> str:
    wall, cpu = costs
    return f"{wall * 1e6:.1f} / {cpu * 1e6:.1f}"


MEASURES = {
    "next_after": "next_after (compiled)",
    "compile_next_after": "compile + next_after",
    "dateutil_after": "naive dateutil rrule(...).after(now)",
}


def main() -> None:
    run = plotting.Run.start("recurrence")
    zone = ZoneInfo(ZONE)
    median_seconds(functools.partial(refuse, NEVER_MATCHING[0]), repeat=5)  # warm up the CPU and caches
    print(f"next occurrence after {NOW.isoformat()} in {ZONE}")
    print("median per call, wall clock / CPU time, in microseconds")
    print(f"{'rule':8} {'started':14} {'next_after':>15} {'compile+next':>15} {'dateutil after':>17}")
    results: dict[tuple[str, str], float] = {}
    cases: list[dict[str, Any]] = []
    for name, (rule, frequency, extra) in RULES.items():
        for label, age in STARTS.items():
            # Tasks are due at 09:00 local time; "now" (14:00 local) is between two occurrences.
            start_wall = (
                (NOW - age).astimezone(zone).replace(tzinfo=None, hour=9, minute=0, second=0, microsecond=0)
            )
            spec = ScheduleSpec(rrule=rule, start=start_wall, time_zone=ZONE)
            compiled = Recurrence.compile(spec)
            aware_start = start_wall.replace(tzinfo=zone)
            samples = {
                "next_after": batch_seconds(functools.partial(compiled.next_after, NOW)),
                "compile_next_after": batch_seconds(functools.partial(compile_and_ask, spec)),
                "dateutil_after": batch_seconds(
                    functools.partial(dateutil_after, frequency, aware_start, extra)
                ),
            }
            warm, cold, naive = (medians(samples[measure]) for measure in MEASURES)
            results[name, label] = warm[1]
            print(f"{name:8} {label:14} {show(warm):>15} {show(cold):>15} {show(naive):>17}")
            cases.append(
                {
                    "rule": name,
                    "rrule": rule,
                    "started": label,
                    "start": start_wall,
                    **{
                        measure: {
                            "median_wall_us": round(medians(pair)[0] * 1e6, 3),
                            "median_cpu_us": round(medians(pair)[1] * 1e6, 3),
                            "batches_wall_us": [round(x * 1e6, 3) for x in pair[0]],
                            "batches_cpu_us": [round(x * 1e6, 3) for x in pair[1]],
                        }
                        for measure, pair in samples.items()
                    },
                }
            )
    print()
    ratios = {}
    for name in RULES:
        ratio = results[name, "ten years ago"] / results[name, "yesterday"]
        ratios[name] = ratio
        print(f"{name:8} ten-year / yesterday ratio (next_after, CPU time): {ratio:.2f}")
    print()
    print("refusing a rule that never matches (searches the 30-year horizon), wall clock / CPU time")
    refusals = []
    for rule in NEVER_MATCHING:
        wall, cpu = median_seconds(functools.partial(refuse, rule), repeat=5, budget=0.1)
        refusals.append({"rrule": rule, "median_wall_ms": wall * 1e3, "median_cpu_ms": cpu * 1e3})
        print(f"  {rule:50} {wall * 1e3:6.1f} / {cpu * 1e3:6.1f} ms")
    run.finish()
    json_path = plotting.write_results(
        run,
        {
            "now": NOW,
            "time_zone": ZONE,
            "targets": {"next_after_median_us": TARGET_US, "ten_year_ratio": 2},
            "cases": cases,
            "ten_year_ratio_cpu": ratios,
            "refusals": refusals,
        },
    )
    plotting.done(json_path, plot(run, cases))


def plot(run: plotting.Run, cases: list[dict[str, Any]]) -> pathlib.Path:
    """Median CPU time per call for each rule and start, log scale; whiskers: fastest to slowest batch."""
    figure, axes = plotting.new_figure()
    colours = {
        "next_after": plotting.MEASURED,
        "compile_next_after": plotting.OTHER,
        "dateutil_after": plotting.BASELINE,
    }
    width = 0.27
    for offset, (measure, label) in enumerate(MEASURES.items()):
        positions = [index + (offset - 1) * width for index in range(len(cases))]
        medians_us = [case[measure]["median_cpu_us"] for case in cases]
        low = [m - min(case[measure]["batches_cpu_us"]) for m, case in zip(medians_us, cases, strict=True)]
        high = [max(case[measure]["batches_cpu_us"]) - m for m, case in zip(medians_us, cases, strict=True)]
        bars = axes.bar(
            positions,
            medians_us,
            width,
            color=colours[measure],
            label=label,
            yerr=[low, high],
            error_kw={"elinewidth": 0.8, "capsize": 2},
        )
        tops = [max(case[measure]["batches_cpu_us"]) for case in cases]
        plotting.label_bars(axes, bars, [f"{m:,.0f}" for m in medians_us], tops=tops, fontsize=7)
    plotting.target_line(axes, TARGET_US, f"target {TARGET_US} µs (daily, weekly)")
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    slowest = max(max(case[measure]["batches_cpu_us"]) for case in cases for measure in MEASURES)
    axes.set_ylim(5, slowest * 30)  # room above the bars for the legend
    axes.set_xticks(
        range(len(cases)),
        [f"{case['rule']}\n{case['started'].replace('ten years ago', '10 years ago')}" for case in cases],
    )
    for boundary in (1.5, 3.5):
        axes.axvline(boundary, color="lightgray", linewidth=0.8)
    axes.set_ylabel("median CPU time per call (µs, log scale)")
    axes.set_xlabel("rule, and when its schedule started (whiskers: fastest to slowest of 9 batches)")
    axes.legend(loc="upper center", ncol=2, fontsize=8)
    axes.grid(axis="y", which="major", color="0.9")
    axes.set_axisbelow(True)
    return plotting.save_figure(
        run, figure, f"Next occurrence after now, schedules started yesterday and 10 years ago ({ZONE})"
    )


if __name__ == "__main__":
    main()
