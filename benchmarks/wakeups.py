"""Work that wakes across replicas: LISTEN/NOTIFY against polling, and 1, 2, 3 relays.

Run alone on an idle machine: ``.venv/bin/python benchmarks/wakeups.py`` (about
three minutes). It starts a throw-away PostgreSQL and the Dapr double (its own
process, ``--count-only``), runs relays as real ``todo-operator relay`` processes
and measures, CPU read from ``/proc`` per process (the relays', and the
database server's over all its processes):

* idle CPU of one relay and of the PostgreSQL server it talks to, polling every
  50 ms (``TODO_LISTEN_NOTIFY=false``, the behaviour before) against woken by
  NOTIFY, over ``IDLE_SECONDS`` with nothing to publish;
* wake latency: one event written to an idle relay, from its commit
  (``created_at``) to ``published_at``, ``SAMPLES`` times each way;
* the inline dispatcher (operator/due_work.py, in this process with a real SMTP
  sink): idle CPU of this process both ways, and the time from a reminder
  written by someone else (another replica, the API) to its e-mail: with
  NOTIFY, and without (the dispatcher's next look, up to a minute);
* 1, 2 and 3 relays on the same backlog of ``BACKLOG`` events (1,000 users),
  started and idle before the backlog lands in one commit: events/s and CPU
  per event (relays, database), which must not grow;
* the triggers' cost on the write path: outbox rows appended five per
  transaction with the trigger and with it disabled (median of ``ROUNDS``).

Writes ``benchmarks/results/wakeups.json`` and ``docs/images/wakeups.png``.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import plotting
from outbox import _APPEND as _APPEND_SQL
from outbox import USERS, _append, _reset, _rows, _start_double, _unpublished
from psycopg_pool import AsyncConnectionPool
from reminders import inline_scheduler, insert_reminders

from todo_devstack import postgres
from todo_devstack.smtp import SmtpSink
from todo_operator.store import schema, wakeups

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "30000"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "20"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "30"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
APPEND_ROWS, APPEND_BATCH = 20_000, 5
TICK = os.sysconf("SC_CLK_TCK")
BIN = pathlib.Path(sys.executable).parent


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU of these processes so far (processes gone since count nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def server_pids(server: postgres.ThrowawayPostgres) -> list[int]:
    """The postmaster and every process it forked (backends, checkpointer, WAL writer ...)."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    children = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def start_relays(count: int, *, dsn: str, url: str, notify: bool) -> list[subprocess.Popen[bytes]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODO_")}
    env |= {
        "TODO_DATABASE_URL": dsn,
        "TODO_DAPR_HTTP_ENDPOINT": url,
        "TODO_RELAY_BATCH_SIZE": "1000",
        "TODO_LISTEN_NOTIFY": "true" if notify else "false",
        "TODO_LOG_FORMAT": "text",
    }
    return [
        subprocess.Popen(
            [str(BIN / "todo-operator"), "relay", "--log-level", "WARNING"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop_relays(relays: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in relays:
        process.terminate()
    for process in relays:
        process.wait(timeout=20)


async def until_published(pool: AsyncConnectionPool[Any], *, seconds: float = 120.0) -> None:
    async with asyncio.timeout(seconds):
        while await _unpublished(pool):  # noqa: ASYNC110  # polling the database is the measurement
            await asyncio.sleep(0.02)


async def relay_idle_and_latency(
    pool: AsyncConnectionPool[Any], server: postgres.ThrowawayPostgres, *, dsn: str, url: str, notify: bool
) -> dict[str, Any]:
    await _reset(pool)
    relays = start_relays(1, dsn=dsn, url=url, notify=notify)
    try:
        await _append(pool, _rows(1))
        await until_published(pool, seconds=30)  # started and connected
        await asyncio.sleep(2)
        pids = [process.pid for process in relays]
        database = server_pids(server)
        before = cpu_seconds(pids), cpu_seconds(database)
        await asyncio.sleep(IDLE_SECONDS)
        relay_cpu, database_cpu = (cpu_seconds(pids) - before[0], cpu_seconds(database) - before[1])
        await _reset(pool)
        for n in range(SAMPLES):
            await _append(pool, _rows(1, n))
            await until_published(pool, seconds=30)
            await asyncio.sleep(0.1)
        async with pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT extract(epoch FROM published_at - created_at) FROM outbox"
            )
            latencies = [float(row[0]) for row in await cursor.fetchall()]
    finally:
        stop_relays(relays)
    return {
        "idle_relay_cpu_percent": 100 * relay_cpu / IDLE_SECONDS,
        "idle_database_cpu_percent": 100 * database_cpu / IDLE_SECONDS,
        "wake_latency_p50_seconds": statistics.median(latencies),
        "wake_latency_max_seconds": max(latencies),
    }


async def dispatcher_idle_and_latency(dsn: str, *, notify: bool) -> dict[str, Any]:
    """One inline dispatcher in this process, idle, then a reminder written by another connection."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, open=False, max_size=8, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    async with pool.connection() as connection:
        await connection.execute("DELETE FROM reminders")
    samples = SAMPLES if notify else 1  # without NOTIFY one sample is a minute
    with SmtpSink() as sink:
        due_work, connections = inline_scheduler(pool, smtp_port=sink.port)
        tasks = [asyncio.create_task(due_work.run())]
        if notify:
            listener = wakeups.Listener(dsn, {wakeups.DUE_WORK: due_work.wake})
            tasks.append(asyncio.create_task(listener.run()))
            await listener.listening.wait()
        try:
            await asyncio.sleep(2)
            before = time.process_time()
            await asyncio.sleep(IDLE_SECONDS)
            idle_cpu = time.process_time() - before
            latencies = []
            for n in range(samples):
                written = time.perf_counter()
                await insert_reminders(pool, count=1, start=datetime.now(UTC), window=0, first=n)
                await asyncio.to_thread(sink.wait_for, n + 1, timeout=90)
                latencies.append(time.perf_counter() - written)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await connections.close()
            await pool.close()
    return {
        "idle_process_cpu_percent": 100 * idle_cpu / IDLE_SECONDS,
        "written_to_sent_p50_seconds": statistics.median(latencies),
        "written_to_sent_max_seconds": max(latencies),
    }


async def relays_on_a_backlog(server: postgres.ThrowawayPostgres, *, url: str, count: int) -> dict[str, Any]:
    """``count`` relays, started and idle, then the whole backlog in one commit: the time and CPU
    from that commit until the last row is published (process start-up is left out).

    Each count on a database of its own: what earlier runs left (dead rows, statistics) must not
    be measured as the relays' cost.
    """
    dsn = server.create_database(f"backlog_{count}")
    await asyncio.to_thread(schema.migrate_up, dsn)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, open=False, min_size=1, max_size=2, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    relays = start_relays(count, dsn=dsn, url=url, notify=True)
    try:
        await asyncio.sleep(4)  # started, connected, idle
        pids = [process.pid for process in relays]
        rows = _rows(BACKLOG)
        async with pool.connection() as connection, connection.transaction(), connection.cursor() as cursor:
            await cursor.executemany(_APPEND_SQL, rows)
            relay_before, database_before = cpu_seconds(pids), cpu_seconds(server_pids(server))
        began = time.perf_counter()
        await until_published(pool)
        elapsed = time.perf_counter() - began
        relay_cpu = cpu_seconds(pids) - relay_before
        # Backends of the relays' connections are gone once they stop: read the server first.
        database_cpu = cpu_seconds(server_pids(server)) - database_before
    finally:
        stop_relays(relays)
        await pool.close()
    return {
        "relays": count,
        "events_per_second": BACKLOG / elapsed,
        "relay_cpu_ms_per_1000_events": 1e6 * relay_cpu / BACKLOG,
        "database_cpu_ms_per_1000_events": 1e6 * database_cpu / BACKLOG,
    }


async def append_cost(pool: AsyncConnectionPool[Any]) -> dict[str, float]:
    """The trigger's cost on the write path: appending rows with it, and with it disabled (same run).

    Rows go in as the operator writes them, a few per transaction (``APPEND_BATCH``), the median
    of ``ROUNDS`` rounds each way, alternating.
    """
    timings: dict[str, list[float]] = {"with_trigger": [], "without_trigger": []}
    for _ in range(ROUNDS):
        for case in timings:
            await _reset(pool)
            switch = "ENABLE" if case == "with_trigger" else "DISABLE"
            async with pool.connection() as connection:
                await connection.execute(f"ALTER TABLE outbox {switch} TRIGGER outbox_wakes_relays")
            rows = _rows(APPEND_ROWS)
            began = time.perf_counter()
            for start in range(0, APPEND_ROWS, APPEND_BATCH):
                await _append(pool, rows[start : start + APPEND_BATCH])
            timings[case].append(APPEND_ROWS / (time.perf_counter() - began))
    async with pool.connection() as connection:
        await connection.execute("ALTER TABLE outbox ENABLE TRIGGER outbox_wakes_relays")
    await _reset(pool)
    return {case: statistics.median(rates) for case, rates in timings.items()}


async def main(dsn: str, url: str, server: postgres.ThrowawayPostgres) -> dict[str, Any]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, open=False, min_size=2, max_size=4, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    try:
        scaling = [await relays_on_a_backlog(server, url=url, count=n) for n in (1, 2, 3)]
        relay = {
            mode: await relay_idle_and_latency(pool, server, dsn=dsn, url=url, notify=mode == "notify")
            for mode in ("poll", "notify")
        }
        dispatch = {
            mode: await dispatcher_idle_and_latency(dsn, notify=mode == "notify")
            for mode in ("poll", "notify")
        }
        appends = await append_cost(pool)
    finally:
        await pool.close()
    for mode, figures in relay.items():
        print(
            f"relay, {mode}: idle CPU relay {figures['idle_relay_cpu_percent']:.2f} %,"
            f" database {figures['idle_database_cpu_percent']:.2f} %;"
            f" wake latency p50 {figures['wake_latency_p50_seconds'] * 1000:.1f} ms,"
            f" max {figures['wake_latency_max_seconds'] * 1000:.1f} ms"
        )
    for mode, figures in dispatch.items():
        print(
            f"dispatcher, {mode}: idle CPU {figures['idle_process_cpu_percent']:.2f} %;"
            f" written to sent p50 {figures['written_to_sent_p50_seconds']:.3f} s,"
            f" max {figures['written_to_sent_max_seconds']:.3f} s"
        )
    for figures in scaling:
        print(
            f"{figures['relays']} relay(s): {figures['events_per_second']:,.0f} events/s,"
            f" CPU per 1,000 events: relays {figures['relay_cpu_ms_per_1000_events']:.0f} ms,"
            f" database {figures['database_cpu_ms_per_1000_events']:.0f} ms"
        )
    print(
        f"appending outbox rows, {APPEND_BATCH} per transaction: {appends['with_trigger']:,.0f} rows/s with"
        f" the trigger, {appends['without_trigger']:,.0f} without"
        f" ({appends['with_trigger'] / appends['without_trigger']:.2f}x)"
    )
    return {
        "appends_rows_per_second": appends,
        "append_batch": APPEND_BATCH,
        "backlog": BACKLOG,
        "users": USERS,
        "idle_seconds": IDLE_SECONDS,
        "samples": SAMPLES,
        "cores": os.cpu_count(),
        "relay": relay,
        "dispatcher": dispatch,
        "relays_on_a_backlog": scaling,
        "dispatcher_poll_interval_seconds": timedelta(seconds=60).total_seconds(),
    }


def plot(run: plotting.Run, results: dict[str, Any]) -> pathlib.Path:
    """Left: idle CPU, polling against NOTIFY. Right: events/s and CPU per event by relay count."""
    figure, (idle, scaling) = plotting.new_figure(1, 2)
    labels = ["relay", "database\n(relay's)", "dispatcher"]
    for offset, mode, colour in ((-0.2, "poll", plotting.BASELINE), (0.2, "notify", plotting.MEASURED)):
        values = [
            results["relay"][mode]["idle_relay_cpu_percent"],
            results["relay"][mode]["idle_database_cpu_percent"],
            results["dispatcher"][mode]["idle_process_cpu_percent"],
        ]
        bars = idle.bar([n + offset for n in range(3)], values, width=0.4, color=colour, label=mode)
        plotting.label_bars(idle, bars, [f"{value:.2f}" for value in values])
    idle.set_xticks(range(3), labels)
    idle.set_ylabel("idle CPU, % of one core")
    idle.legend(fontsize=8)
    idle.grid(axis="y", color="0.9")
    counts = [row["relays"] for row in results["relays_on_a_backlog"]]
    scaling.bar(
        counts, [row["events_per_second"] for row in results["relays_on_a_backlog"]], color=plotting.MEASURED
    )
    scaling.set_xticks(counts)
    scaling.set_xlabel(f"relays ({results['cores']} cores)")
    scaling.set_ylabel("events/s", color=plotting.MEASURED)
    per_event = scaling.twinx()
    per_event.plot(
        counts,
        [row["relay_cpu_ms_per_1000_events"] for row in results["relays_on_a_backlog"]],
        marker="o",
        color=plotting.OTHER,
        label="relay CPU ms / 1,000 events",
    )
    per_event.set_ylim(bottom=0)
    per_event.legend(loc="lower right", fontsize=8)
    return plotting.save_figure(run, figure, "Wake-ups: idle cost, polling vs NOTIFY; relays on one backlog")


if __name__ == "__main__":
    run = plotting.Run.start("wakeups")
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-wakeups-") as folder:
        base_dir = pathlib.Path(folder)
        with postgres.ThrowawayPostgres(base_dir=base_dir, bin_dir=postgres.find_bin_dir()) as server:
            dsn = server.create_database("bench")
            schema.migrate_up(dsn)
            double, url = _start_double()
            try:
                results = asyncio.run(main(dsn, url, server))
                run.finish()
            finally:
                double.terminate()
                double.wait(timeout=10)
    plotting.done(plotting.write_results(run, results), plot(run, results))
