"""Inline reminder delivery: e-mails per second and delivery lag, 10,000 reminders due within one minute.

Real parts: a throw-away PostgreSQL, the real scheduler and delivery path
(row lock per attempt, aiosmtplib, the outbox event), an aiosmtpd sink on
loopback, the system clock. Left out: the Kubernetes status write after each
send (``ReminderReconciler.report``), which is the API server's throughput,
not ours; it is replaced by a no-op here.

The SMTP sink runs in a process of its own, as a real mail server would
(in this process it would compete with the dispatcher for the GIL).

Run: .venv/bin/python benchmarks/reminders.py [--reminders 10000] [--window 60]
Targets (issue 4): >= 200 e-mails/s, p99 lag (sent - fire time) <= 1 s.
Writes ``benchmarks/results/reminders.json`` and the plot ``docs/images/reminders.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import pathlib
import queue
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import plotting
from psycopg_pool import AsyncConnectionPool

from todo_devstack.postgres import ThrowawayPostgres, free_port
from todo_devstack.smtp import SmtpSink
from todo_operator.channels import mail
from todo_operator.channels.delivery import Outcome, ReminderDelivery
from todo_operator.clock import SystemClock
from todo_operator.domain import timing
from todo_operator.operator.due_work import DueWork
from todo_operator.store import schema

TARGET_RATE = 200  # e-mails/s
TARGET_LAG = 1.0  # seconds, p99


@dataclass
class Case:
    rate: float  # e-mails/s, first to last arrival
    lags: list[float]  # sent - fire time, seconds, sorted
    deliveries: list[tuple[float, float]]  # (fire time, arrival), seconds after the first fire time


class NoStatusWrites:
    """Stands in for the ReminderReconciler: the benchmark measures delivery, not the API server."""

    async def report(self, *, namespace: str, name: str, outcome: Outcome) -> None:
        return None


class NoOverdueTasks:
    async def reconcile(self, body: dict[str, Any]) -> None:
        return None


async def insert_reminders(
    pool: AsyncConnectionPool[Any], *, count: int, start: datetime, window: float, first: int = 0
) -> None:
    """Reminders ``r<first>`` ... due evenly over ``window`` seconds from ``start``, in one COPY."""
    rows = []
    for index in range(first, first + count):
        fire = start + timedelta(seconds=window * (index - first) / count)
        rows.append(
            (
                str(uuid.uuid4()),
                "bench",
                f"r{index}",
                f"task-{index}",
                f"Task {index}",
                "alice@example.com",
                "alice@example.com",
                fire,
                "Pending",
                "inline",
                1,
                "{}",
                start - timedelta(minutes=1),
                start - timedelta(minutes=1),
            )
        )
    async with (
        pool.connection() as connection,
        connection.cursor() as cursor,
        cursor.copy(
            "COPY reminders (uid, namespace, name, task_name, task_title, owner, recipient, fire_at,"
            " phase, delivery, generation, spec, created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            await copy.write_row(row)


def _sink_process(port: int, arrivals: Any, stop: Any) -> None:
    """Runs in a child process: accept mail, report (arrival, reminder uid) pairs to the parent."""
    with SmtpSink(port=port) as sink:
        reported = 0
        while not stop.is_set():
            for arrived, message in sink.arrivals[reported:]:
                arrivals.put((arrived, message["X-Todo-Reminder"]))
                reported += 1
            time.sleep(0.05)


class RemoteSink:
    def __init__(self) -> None:
        self.port = free_port()
        self._arrivals: Any = multiprocessing.Queue()
        self._stop = multiprocessing.Event()
        self._process = multiprocessing.Process(
            target=_sink_process, args=(self.port, self._arrivals, self._stop)
        )
        self.received: list[tuple[datetime, str]] = []

    def __enter__(self) -> RemoteSink:
        self._process.start()
        time.sleep(1.0)  # let it bind its port
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._process.join(timeout=10)

    def collect(self) -> int:
        with contextlib.suppress(queue.Empty):
            while True:
                self.received.append(self._arrivals.get_nowait())
        return len(self.received)


def inline_scheduler(
    pool: AsyncConnectionPool[Any], *, smtp_port: int, max_idle: timedelta = timedelta(seconds=60)
) -> tuple[DueWork, mail.SmtpPool]:
    """The operator's due-work loop in inline mode on the system clock, sending to ``smtp_port``."""
    smtp = mail.SmtpSettings(port=smtp_port, sender="bench@example.com")
    connections = mail.SmtpPool(settings=smtp)
    clock = SystemClock()
    delivery = ReminderDelivery(
        pool=pool,
        clock=clock,
        send=connections.send,
        sender=smtp.sender,
        retry=mail.RetryPolicy(),
        catch_up=timing.CatchUpPolicy(),
        recipients=timing.RecipientPolicy(),
    )
    scheduler = DueWork(
        pool=pool,
        clock=clock,
        kube_api=None,  # type: ignore[arg-type]  # never used: no task falls due here
        tasks=NoOverdueTasks(),  # type: ignore[arg-type]
        reminders=NoStatusWrites(),  # type: ignore[arg-type]
        delivery=delivery,
        mode="inline",
        catch_up=timing.CatchUpPolicy(),
        max_idle=max_idle,
    )
    return scheduler, connections


async def run_case(dsn: str, sink: RemoteSink, *, count: int, window: float) -> Case:
    """Deliver ``count`` reminders due over ``window`` seconds: e-mails/s, lags, each one's times."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, open=False, min_size=10, max_size=60, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    async with pool.connection() as connection:
        await connection.execute("DELETE FROM reminders")
    already = sink.collect()
    start = datetime.now(tz=UTC) + timedelta(seconds=3)
    await insert_reminders(pool, count=count, start=start, window=window)
    fire_times = {f"r{i}": start + timedelta(seconds=window * i / count) for i in range(count)}
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT uid::text, name FROM reminders")
        name_of = dict(await cursor.fetchall())

    scheduler, connections = inline_scheduler(pool, smtp_port=sink.port)
    running = asyncio.create_task(scheduler.run())
    deadline = time.monotonic() + window + 180
    # A benchmark's progress poll, not a product's wait: checking ten times a second is fine here.
    while sink.collect() < already + count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await connections.close()
    await pool.close()

    arrivals = sink.received[already:]
    lags = sorted((arrived - fire_times[name_of[uid]]).total_seconds() for arrived, uid in arrivals)
    first = min(arrived for arrived, _ in arrivals)
    last = max(arrived for arrived, _ in arrivals)
    rate = len(arrivals) / max((last - first).total_seconds(), 1e-9)
    deliveries = sorted(
        (
            round((fire_times[name_of[uid]] - start).total_seconds(), 6),
            round((arrived - start).total_seconds(), 6),
        )
        for arrived, uid in arrivals
    )
    return Case(rate=rate, lags=lags, deliveries=deliveries)


def _quantile(values: list[float], q: float) -> float:
    return values[min(int(len(values) * q), len(values) - 1)]


async def main(count: int, window: float) -> None:
    run = plotting.Run.start("reminders")
    with (
        tempfile.TemporaryDirectory(dir=pathlib.Path.cwd()) as folder,
        ThrowawayPostgres(base_dir=pathlib.Path(folder) / "pg") as database,
        RemoteSink() as sink,
    ):
        dsn = database.create_database("bench")
        schema.migrate_up(dsn)
        steady = await run_case(dsn, sink, count=count, window=window)
        rate, lags = steady.rate, steady.lags
        print(f"{count} reminders due evenly within {window:.0f} s ({count / window:.0f}/s offered):")
        print(
            f"  delivered at {rate:.0f} e-mails/s; lag p50 {statistics.median(lags) * 1000:.0f} ms,"
            f" p99 {_quantile(lags, 0.99) * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
        )
        burst = await run_case(dsn, sink, count=count, window=0.0)
        burst_rate, burst_lags = burst.rate, burst.lags
        print(f"{count} reminders due at the same instant (capacity):")
        print(
            f"  delivered at {burst_rate:.0f} e-mails/s; the last one {burst_lags[-1]:.1f} s after its time"
        )
    run.finish()
    results = {
        "reminders": count,
        "window_seconds": window,
        "targets": {"emails_per_second": TARGET_RATE, "lag_p99_seconds": TARGET_LAG},
        "steady": {
            "emails_per_second": rate,
            "lag_p50_seconds": statistics.median(lags),
            "lag_p99_seconds": _quantile(lags, 0.99),
            "lag_max_seconds": lags[-1],
            "deliveries": steady.deliveries,
        },
        "burst": {
            "emails_per_second": burst_rate,
            "last_lag_seconds": burst_lags[-1],
            "deliveries": burst.deliveries,
        },
    }
    plotting.done(plotting.write_results(run, results), plot(run, results))


def plot(run: plotting.Run, results: dict[str, Any]) -> pathlib.Path:
    """Top: each reminder's lag against its fire time. Bottom: e-mails sent per second, both cases."""
    figure, (top, bottom) = plotting.new_figure(2, 1, figsize=(8, 6))
    count, window = results["reminders"], results["window_seconds"]
    steady, burst = results["steady"], results["burst"]
    due = [fire for fire, _ in steady["deliveries"]]
    lags_ms = [max((sent - fire) * 1000, 0.1) for fire, sent in steady["deliveries"]]
    top.scatter(due, lags_ms, s=3, color=plotting.MEASURED, alpha=0.5, linewidths=0, label="one reminder")
    plotting.percentile_lines(
        top, {"p50": steady["lag_p50_seconds"] * 1000, "p99": steady["lag_p99_seconds"] * 1000}, unit=" ms"
    )
    plotting.target_line(top, results["targets"]["lag_p99_seconds"] * 1000, "target p99 1 s")
    top.set_yscale("log")
    top.set_ylim(top=max(*lags_ms, results["targets"]["lag_p99_seconds"] * 1000) * 5)  # room for the legend
    top.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")
    top.set_ylabel("lag, sent − due (ms, log)")
    top.set_xlabel("due time (s after the first)", fontsize=9)
    top.set_title(
        f"{count:,} reminders due evenly within {window:.0f} s ({count / window:,.0f}/s offered)", fontsize=9
    )
    top.legend(loc="upper center", fontsize=7, ncol=4, markerscale=3)
    top.grid(color="0.9")

    busiest = 0
    for case, label, colour in (
        (steady, f"due within {window:.0f} s", plotting.MEASURED),
        (burst, "due at the same instant (capacity)", plotting.OTHER),
    ):
        sent = [arrival for _, arrival in case["deliveries"]]
        first = math.floor(min(sent))
        per_second = [0] * (math.floor(max(sent)) - first + 1)
        for arrival in sent:
            per_second[math.floor(arrival) - first] += 1
        busiest = max(busiest, *per_second)
        bottom.stairs(
            per_second,
            range(first, first + len(per_second) + 1),
            color=colour,
            linewidth=1.5,
            label=f"{label}: {case['emails_per_second']:,.0f}/s overall",
        )
    plotting.target_line(bottom, results["targets"]["emails_per_second"], "target 200/s")
    bottom.set_ylim(0, max(busiest, results["targets"]["emails_per_second"]) * 1.4)
    bottom.set_ylabel("e-mails sent per second")
    bottom.set_xlabel("seconds after the case's first due time")
    bottom.legend(loc="upper center", fontsize=7, ncol=2)
    bottom.grid(color="0.9")
    return plotting.save_figure(run, figure, "Reminders, inline delivery to an SMTP sink: lag and throughput")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0)
    options = parser.parse_args()
    asyncio.run(main(options.reminders, options.window))
