"""How fast the outbox relay empties the outbox, and how long an event waits in it.

Run alone on an idle machine: ``.venv/bin/python benchmarks/outbox.py`` (about
a minute). It starts a throw-away PostgreSQL (fsync off, as in the tests) and
the Dapr double in a process of its own on loopback (as daprd would be), then measures:

* sustained: a backlog of ``BACKLOG`` events (1,000 users) drained by one relay
  (bulk publish, batches of 1,000; BENCH_BATCH, BENCH_LANES, BENCH_BACKLOG change it): events/s;
* lag: events offered at 1,000/s (ten per 10 ms, one transaction each, as the
  operator writes them) while the relay runs: publish lag p50/p99, from the
  row's commit (``created_at``) to its ``published_at``;
* baseline, same run: one event at a time — claim one row, single publish,
  mark it, one commit each.

Targets (docs/PERFORMANCE.md): >= 10,000 events/s sustained, p99 lag < 1 s at
1,000 events/s, >= 5x the baseline.
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
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from todo_operator.devstack import postgres
from todo_operator.events import dapr, relay
from todo_operator.store import schema
from todo_operator.store.outbox import OutboxStore

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "50000"))
BASELINE = int(os.environ.get("BENCH_BASELINE", "3000"))
USERS = 1000
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
LANES = int(os.environ.get("BENCH_LANES", "1"))
OFFERED_PER_SECOND = 1000
OFFERED_SECONDS = 10

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
        "relay_lanes": LANES,
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
    while await _unpublished(pool):  # noqa: ASYNC110  # polling the database is the measurement
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - began
    stop.set()
    await running
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
        settings=_settings(dsn, url, relay_batch_size=1, relay_bulk=False, relay_lanes=1),
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


async def main(dsn: str, url: str) -> None:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, open=False, min_size=4, max_size=8, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        publisher = dapr.DaprPublisher(session=session, endpoint=url, pubsub="pubsub")
        rate = await sustained(pool, publisher, dsn, url)
        base = await baseline(pool, publisher, dsn, url)
        lags = await lag(pool, publisher, dsn, url)
    await pool.close()
    quantiles = statistics.quantiles(lags, n=100)
    print(f"load average before: {os.getloadavg()}")
    print(
        f"sustained: {rate:,.0f} events/s, {2 * rate:,.0f} CloudEvents/s"
        f" ({BACKLOG:,} events, {USERS} users, bulk, batch {BATCH}, {LANES} lanes)"
    )
    print(f"baseline:  {base:,.0f} events/s (one event per claim, single publish, one commit each)")
    print(f"speed-up:  {rate / base:.1f}x")
    print(
        f"lag at {OFFERED_PER_SECOND}/s for {OFFERED_SECONDS}s ({len(lags):,} events):"
        f" p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms,"
        f" max {max(lags) * 1000:.0f} ms"
    )


def _start_double() -> tuple[subprocess.Popen[bytes], str]:
    port = postgres.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "todo_operator.devstack.dapr", "--port", str(port)], stdout=subprocess.DEVNULL
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
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
        base_dir = pathlib.Path(folder)
        with postgres.ThrowawayPostgres(base_dir=base_dir, bin_dir=postgres.find_bin_dir()) as server:
            dsn = server.create_database("bench")
            schema.migrate_up(dsn)
            double, url = _start_double()
            try:
                asyncio.run(main(dsn, url))
                with urllib.request.urlopen(f"{url}/_devstack/received") as response:
                    print(f"the Dapr double received {json.load(response)['received']:,} CloudEvents")
            finally:
                double.terminate()
                double.wait(timeout=10)
