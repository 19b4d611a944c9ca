"""How fast the outbox relay empties the outbox, and how long an event waits in it.

Run alone on an idle machine: ``.venv/bin/python benchmarks/outbox.py`` (about
a minute). It starts a throw-away PostgreSQL (fsync off, as in the tests) and
the Dapr double in a process of its own on loopback (as daprd would be), then measures:

* sustained: a backlog of ``BACKLOG`` events (1,000 users) drained by one relay
  (bulk publish, batches of 1,000, the next batch claimed while one is published;
  BENCH_BATCH, BENCH_BACKLOG change it): events/s, the median of ``ROUNDS`` drains
  (BENCH_ROUNDS; this shared machine's speed moves by a quarter from one run to the next);
* lag: events offered at 1,000/s (ten per 10 ms, one transaction each, as the
  operator writes them) while the relay runs: publish lag p50/p99, from the
  row's commit (``created_at``) to its ``published_at``;
* baseline, same run: one event at a time — claim one row, single publish,
  mark it, one commit each.

Targets (docs/PERFORMANCE.md): >= 10,000 events/s sustained, p99 lag < 1 s at
1,000 events/s, >= 5x the baseline.

Writes ``benchmarks/results/outbox.json`` and the plot ``docs/images/outbox.png``.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from typing import Any

import aiohttp
import plotting
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from todo_devstack import postgres
from todo_operator.events import dapr, relay
from todo_operator.store import schema
from todo_operator.store.outbox import OutboxStore

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "50000"))
BASELINE = int(os.environ.get("BENCH_BASELINE", "3000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
USERS = 1000
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
OFFERED_PER_SECOND = 1000
OFFERED_SECONDS = 10
TARGET_RATE = 10_000  # outbox events/s, sustained
TARGET_LAG = 1.0  # seconds, p99 at OFFERED_PER_SECOND

_APPEND = """
INSERT INTO outbox (event_id, topic, event_type, subject, partition_key, payload)
VALUES (%s, 'task-events', 'task.updated', %s, %s, %s)
"""


def _rows(count: int, offset: int = 0) -> list[tuple[Any, ...]]:
    rows = []
    for n in range(offset, offset + count):
        owner = f"user-{n % USERS}@example.com"
        data = {"title": f"Task {n}", "owner": owner, "priority": "medium", "phase": "Open"}
        rows.append((uuid.uuid4(), f"team-a/task-{n}", owner, Jsonb(data)))
    return rows


async def _append(pool: AsyncConnectionPool[Any], rows: list[tuple[Any, ...]]) -> None:
    async with pool.connection() as connection, connection.transaction(), connection.cursor() as cursor:
        await cursor.executemany(_APPEND, rows)


async def _reset(pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection() as connection:
        await connection.execute("TRUNCATE outbox")


async def _unpublished(pool: AsyncConnectionPool[Any]) -> int:
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


def _settings(dsn: str, endpoint: str, **overrides: Any) -> relay.RelaySettings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "dapr_http_endpoint": endpoint,
        "relay_batch_size": BATCH,
        "relay_idle_seconds": 0.02,
    }
    values.update(overrides)
    return relay.RelaySettings(**values)


async def sustained(
    pool: AsyncConnectionPool[Any], publisher: dapr.DaprPublisher, dsn: str, url: str
) -> float:
    await _reset(pool)
    for start in range(0, BACKLOG, 5000):
        await _append(pool, _rows(min(5000, BACKLOG - start), start))
    the_relay = relay.Relay(store=OutboxStore(pool), publisher=publisher, settings=_settings(dsn, url))
    stop = asyncio.Event()
    began = time.perf_counter()
    running = asyncio.create_task(the_relay.run(stop=stop))
    # Watched in-process: polling the database for the count would take its CPU from the relay.
    published = ("todo_events_published_total", {"topic": "task-events"})
    while (the_relay.metrics.registry.get_sample_value(*published) or 0) < BACKLOG:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - began
    stop.set()
    await running
    assert await _unpublished(pool) == 0
    return BACKLOG / elapsed


async def baseline(
    pool: AsyncConnectionPool[Any], publisher: dapr.DaprPublisher, dsn: str, url: str
) -> float:
    """One row per claim, single publish, one commit per event."""
    await _reset(pool)
    await _append(pool, _rows(BASELINE))
    the_relay = relay.Relay(
        store=OutboxStore(pool),
        publisher=publisher,
        settings=_settings(dsn, url, relay_batch_size=1, relay_bulk=False),
    )
    began = time.perf_counter()
    while (await the_relay.publish_batch()).claimed:
        pass
    return BASELINE / (time.perf_counter() - began)


async def lag(
    pool: AsyncConnectionPool[Any], publisher: dapr.DaprPublisher, dsn: str, url: str
) -> list[float]:
    await _reset(pool)
    stop = asyncio.Event()
    the_relay = relay.Relay(store=OutboxStore(pool), publisher=publisher, settings=_settings(dsn, url))
    running = asyncio.create_task(the_relay.run(stop=stop))
    per_tick = OFFERED_PER_SECOND // 100
    began = time.perf_counter()
    for tick in range(OFFERED_SECONDS * 100):
        await _append(pool, _rows(per_tick, tick * per_tick))
        # Keep the offered rate: wait for the next 10 ms slot.
        await asyncio.sleep(max(0.0, began + (tick + 1) / 100 - time.perf_counter()))
    while await _unpublished(pool):  # noqa: ASYNC110  # polling the database is the measurement
        await asyncio.sleep(0.05)
    stop.set()
    await running
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "SELECT extract(epoch FROM published_at - created_at) FROM outbox ORDER BY id"
        )
        return [float(row[0]) for row in await cursor.fetchall()]


async def main(dsn: str, url: str) -> dict[str, Any]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, open=False, min_size=4, max_size=8, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        publisher = dapr.DaprPublisher(session=session, endpoint=url, pubsub="pubsub")
        rates = [await sustained(pool, publisher, dsn, url) for _ in range(ROUNDS)]
        rate = statistics.median(rates)
        base = await baseline(pool, publisher, dsn, url)
        lags = await lag(pool, publisher, dsn, url)
    await pool.close()
    quantiles = statistics.quantiles(lags, n=100)
    print(f"load average after the runs: {os.getloadavg()}")
    print(
        f"sustained: {rate:,.0f} events/s, {2 * rate:,.0f} CloudEvents/s"
        f" (median of {ROUNDS}: {', '.join(f'{r:,.0f}' for r in rates)})"
        f" ({BACKLOG:,} events, {USERS} users, bulk, batch {BATCH})"
    )
    print(f"baseline:  {base:,.0f} events/s (one event per claim, single publish, one commit each)")
    print(f"speed-up:  {rate / base:.1f}x")
    print(
        f"lag at {OFFERED_PER_SECOND}/s for {OFFERED_SECONDS}s ({len(lags):,} events):"
        f" p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms,"
        f" max {max(lags) * 1000:.0f} ms"
    )
    return {
        "backlog": BACKLOG,
        "baseline_events": BASELINE,
        "users": USERS,
        "batch": BATCH,
        "offered_per_second": OFFERED_PER_SECOND,
        "offered_seconds": OFFERED_SECONDS,
        "targets": {"events_per_second": TARGET_RATE, "lag_p99_seconds": TARGET_LAG, "speed_up": 5},
        "sustained_events_per_second": rate,
        "sustained_rounds_events_per_second": rates,
        "sustained_cloud_events_per_second": 2 * rate,
        "baseline_events_per_second": base,
        "speed_up": rate / base,
        "lag_p50_seconds": quantiles[49],
        "lag_p99_seconds": quantiles[98],
        "lag_max_seconds": max(lags),
        "lags_seconds": [round(value, 6) for value in lags],  # by outbox id, i.e. in the order offered
    }


def plot(run: plotting.Run, results: dict[str, Any]) -> pathlib.Path:
    """Left: sustained vs baseline events/s and the target. Right: the lag distribution at 1,000/s."""
    figure, (rates, lags) = plotting.new_figure(1, 2, width_ratios=(2, 3))
    values = [results["sustained_events_per_second"], results["baseline_events_per_second"]]
    bars = rates.bar(
        [
            f"sustained\nbulk, batch {results['batch']:,}\nclaimed ahead",
            "baseline\none per claim",
        ],
        values,
        color=[plotting.MEASURED, plotting.BASELINE],
        width=0.6,
    )
    rounds = results.get("sustained_rounds_events_per_second", [])
    if len(rounds) > 1:
        rates.scatter([0] * len(rounds), rounds, color="black", s=10, zorder=3, label="each drain")
    texts = [f"{value:,.0f}/s" for value in values]
    big = [value > 0.3 * max(values) for value in values]  # labelled inside, the others above
    rates.bar_label(
        bars, [t if b else "" for t, b in zip(texts, big, strict=True)], label_type="center", color="white"
    )
    small = [(bar, t) for bar, t, b in zip(bars, texts, big, strict=True) if not b]
    plotting.label_bars(rates, [bar for bar, _ in small], [t for _, t in small])
    plotting.target_line(rates, results["targets"]["events_per_second"], "target 10,000/s")
    rates.set_ylim(0, max([*values, results["targets"]["events_per_second"]]) * 1.2)
    rates.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    rates.set_ylabel("outbox events published per second")
    rates.set_title(
        f"{results['backlog']:,}-event backlog: {results['speed_up']:.1f}× the baseline\n"
        f"({2 * values[0]:,.0f} CloudEvents/s)",
        fontsize=9,
    )
    rates.legend(loc="upper right", fontsize=8)

    milliseconds = [value * 1000 for value in results["lags_seconds"]]
    plotting.cdf(lags, [max(value, 0.1) for value in milliseconds], color=plotting.MEASURED, label="lag")
    plotting.percentile_lines(
        lags,
        {"p50": results["lag_p50_seconds"] * 1000, "p99": results["lag_p99_seconds"] * 1000},
        vertical=True,
        unit=" ms",
    )
    plotting.target_line(lags, results["targets"]["lag_p99_seconds"] * 1000, "target p99 1 s", vertical=True)
    lags.set_xscale("log")
    lags.xaxis.set_major_formatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")
    lags.set_xlabel("publish lag, commit to published (ms, log scale)")
    lags.set_title(
        f"lag at {results['offered_per_second']:,} events/s offered for {results['offered_seconds']} s"
        f" ({len(milliseconds):,} events)",
        fontsize=9,
    )
    lags.legend(loc="upper left", fontsize=8)
    lags.grid(color="0.9")
    return plotting.save_figure(
        run, figure, f"Outbox relay to the Dapr double, {results['users']:,} users: throughput and lag"
    )


def _start_double() -> tuple[subprocess.Popen[bytes], str]:
    port = postgres.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "todo_devstack.dapr", "--port", str(port), "--count-only"],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v1.0/healthz"):
                return process, url
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    run = plotting.Run.start("outbox")
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
        base_dir = pathlib.Path(folder)
        with postgres.ThrowawayPostgres(base_dir=base_dir, bin_dir=postgres.find_bin_dir()) as server:
            dsn = server.create_database("bench")
            schema.migrate_up(dsn)
            double, url = _start_double()
            try:
                results = asyncio.run(main(dsn, url))
                run.finish()
                with urllib.request.urlopen(f"{url}/_devstack/received") as response:
                    received = json.load(response)["received"]
                    print(f"the Dapr double received {received:,} CloudEvents")
                results["cloud_events_received"] = received
            finally:
                double.terminate()
                double.wait(timeout=10)
    plotting.done(plotting.write_results(run, results), plot(run, results))
