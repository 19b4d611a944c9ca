"""Engine fairness: other users' reads while one user floods costly schedule previews.

Run alone: ``.venv/bin/python benchmarks/engine_fairness.py [--reads 400] [--flood 64]
[--modes capped,uncapped]`` (about a minute). Writes
``benchmarks/results/engine_fairness.json`` and ``docs/images/engine_fairness.png``.

Real parts: a throw-away PostgreSQL, ``todo-operator api`` as a process of its
own (uvicorn), HTTP on loopback with real JWTs. Other users read one request
at a time, each measured on its own: the list of their tasks (PostgreSQL, no
schedule engine) and a cheap schedule preview (``every: daily``, through the
engine). First with nothing else going on ("quiet"), then while one user keeps
``--flood`` previews of the costliest valid rule known in flight ("flood";
the flooder waits ``Retry-After`` when told to, as a client library would),
measured in the same run: the ratio of their p99s is what the flood costs the
others.

Modes, each with its own server (both with the compile budget):

* ``capped`` - the API's defaults: one engine job per user
  (``TODO_API_ENGINE_JOBS_PER_USER``), 16 in all (``TODO_API_ENGINE_QUEUE``);
* ``uncapped`` - both limits out of reach, as before they existed: every
  preview queues for the engine's two threads.

The per-minute preview limit is lifted in both (``TODO_API_PREVIEWS_PER_MINUTE``):
it is per replica and per user, and several users together get past it.
Nothing is asserted: docs/PERFORMANCE.md ("Engine fairness") records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import jwt
import plotting
import psycopg

from todo_devstack.postgres import ThrowawayPostgres, free_port
from todo_operator.store import schema

SECRET = "a-benchmark-secret-of-at-least-32-bytes"
NAMESPACE = "bench"
READERS = [f"reader{index}@example.com" for index in range(4)]
FLOODER = "flooder@example.com"
COSTLY_RULE = "FREQ=MINUTELY;BYYEARDAY=20;BYHOUR=18;BYMINUTE=2,57"  # docs/PERFORMANCE.md, "RRULE bombs"
TASKS_PER_READER = 200
MODES = {
    "capped": {},
    "uncapped": {"TODO_API_ENGINE_JOBS_PER_USER": "1000", "TODO_API_ENGINE_QUEUE": "100000"},
}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def fill(dsn: str) -> None:
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY tasks (uid, namespace, name, owner, title, description, priority, tags, due_at, completed,"
            " phase, generation, spec, created_at, updated_at) FROM STDIN"
        ) as copy:
            for reader in READERS:
                for index in range(TASKS_PER_READER):
                    due = NOW + timedelta(hours=index)
                    name = f"t{index}-{reader.split('@')[0]}"
                    title = f"Water the plants {index}"
                    row = (uuid.uuid4(), NAMESPACE, name, reader, title, "", "medium", ["home"], due)
                    copy.write_row((*row, False, "Open", 1, "{}", NOW, NOW))
        connection.execute("ANALYZE tasks")
        connection.commit()


def token(user: str) -> str:
    claims = {"sub": user, "aud": "todo-api", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@contextlib.contextmanager
def api_server(dsn: str, extra: dict[str, str]) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TODO_DATABASE_URL": dsn,
        "TODO_KUBE_API_URL": "http://127.0.0.1:9",  # never called: lists read PostgreSQL
        "TODO_API_JWT_SECRET": SECRET,
        "TODO_API_NAMESPACE": NAMESPACE,
        "TODO_API_PREVIEWS_PER_MINUTE": "100000",
        **extra,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "todo_operator.cli", "api", "--port", str(port), "--log-level", "WARNING"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def cheap_preview(reader: int) -> dict[str, Any]:
    start = f"2027-0{reader + 1}-01T09:00:00"
    return {"schedule": {"every": "daily", "start": start, "timeZone": "Europe/Berlin"}, "count": 5}


def costly_preview(sequence: int) -> dict[str, Any]:
    # A new start each time: nothing is cached (a refused schedule never is).
    start = (datetime(2027, 1, 1, 9, tzinfo=UTC) + timedelta(minutes=sequence)).strftime("%Y-%m-%dT%H:%M:%S")
    return {"schedule": {"rrule": COSTLY_RULE, "start": start, "timeZone": "Europe/Berlin"}, "count": 100}


async def read(client: httpx.AsyncClient, *, reads: int) -> dict[str, list[float]]:
    """``reads`` requests one at a time, alternating the readers and the two kinds; latencies in ms."""
    latencies: dict[str, list[float]] = {"tasks": [], "preview": []}
    headers = [{"Authorization": f"Bearer {token(reader)}"} for reader in READERS]
    for index in range(reads):
        reader = index % len(READERS)
        started = time.perf_counter()
        if index // len(READERS) % 2 == 0:
            response = await client.get("/api/v1/tasks?limit=50", headers=headers[reader])
            kind = "tasks"
        else:
            response = await client.post(
                "/api/v1/schedules/preview", json=cheap_preview(reader), headers=headers[reader]
            )
            kind = "preview"
        latencies[kind].append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return latencies


async def flood(client: httpx.AsyncClient, *, width: int, stop: asyncio.Event) -> collections.Counter[int]:
    """``width`` costly previews in flight until ``stop``; the answers by status."""
    answers: collections.Counter[int] = collections.Counter()
    headers = {"Authorization": f"Bearer {token(FLOODER)}"}
    sequence = iter(range(1 << 30))

    async def one_client() -> None:
        while not stop.is_set():
            response = await client.post(
                "/api/v1/schedules/preview", json=costly_preview(next(sequence)), headers=headers
            )
            answers[response.status_code] += 1
            if "Retry-After" in response.headers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), float(response.headers["Retry-After"]))

    await asyncio.gather(*(one_client() for _ in range(width)))
    return answers


async def measure(url: str, *, reads: int, width: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=width + 8, max_keepalive_connections=width + 8)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await read(client, reads=2 * len(READERS) * 4)  # warm up: connections, caches, the planner
        quiet = await read(client, reads=reads)
        stop = asyncio.Event()
        flooding = asyncio.create_task(flood(client, width=width, stop=stop))
        await asyncio.sleep(1.0)  # the flood has filled what it may of the engine
        started = time.perf_counter()
        flooded = await read(client, reads=reads)
        flood_seconds = time.perf_counter() - started
        stop.set()
        answers = await flooding
    return {"quiet": quiet, "flood": flooded, "flood_answers": dict(answers), "flood_seconds": flood_seconds}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "samples": len(latencies),
    }


def main(*, reads: int, width: int, modes: list[str]) -> None:
    run = plotting.Run.start("engine_fairness")
    results: dict[str, Any] = {"reads": reads, "flood_width": width, "costly_rule": COSTLY_RULE, "modes": {}}
    with (
        tempfile.TemporaryDirectory(dir=pathlib.Path.cwd()) as folder,
        ThrowawayPostgres(base_dir=pathlib.Path(folder) / "pg") as database,
    ):
        dsn = database.create_database("bench")
        schema.migrate_up(dsn)
        fill(dsn)
        for mode in modes:
            with api_server(dsn, MODES[mode]) as url:
                measured = asyncio.run(measure(url, reads=reads, width=width))
            row: dict[str, Any] = {
                "settings": MODES[mode],
                "flood_answers": measured["flood_answers"],
                "flood_seconds": measured["flood_seconds"],
            }
            for kind in ("tasks", "preview"):
                quiet, flooded = summary(measured["quiet"][kind]), summary(measured["flood"][kind])
                row[kind] = {
                    "quiet": quiet,
                    "flood": flooded,
                    "p99_ratio": flooded["p99_ms"] / quiet["p99_ms"],
                    "latencies_ms": {
                        phase: [round(value, 3) for value in measured[phase][kind]]
                        for phase in ("quiet", "flood")
                    },
                }
            results["modes"][mode] = row
    run.finish()
    print(f"{run.stamp()}; {reads} reads a phase, one at a time; flood: {width} previews of {COSTLY_RULE}")
    header = f"{'mode':9} {'read':8} {'quiet p50/p99 ms':>17} {'flood p50/p99 ms':>17} {'p99 ratio':>9}"
    print(f"{header}  flood answers")
    for mode, row in results["modes"].items():
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(row["flood_answers"].items()))
        for kind in ("tasks", "preview"):
            quiet, flooded = row[kind]["quiet"], row[kind]["flood"]
            quiet_ms = f"{quiet['p50_ms']:8.1f}/{quiet['p99_ms']:<8.1f}"
            flood_ms = f"{flooded['p50_ms']:8.1f}/{flooded['p99_ms']:<8.1f}"
            print(f"{mode:9} {kind:8} {quiet_ms} {flood_ms} {row[kind]['p99_ratio']:9.1f}  {answers}")
    plotting.done(plotting.write_results(run, results), plot(run, results))


def plot(run: plotting.Run, results: dict[str, Any]) -> pathlib.Path:
    """p50 and p99 of each read, quiet and flooded, per mode; log scale, with the p99 ratio."""
    modes = list(results["modes"])
    figure, axes = plotting.new_figure(1, len(modes), sharey=True, squeeze=False)
    for axis, mode in zip(axes[0], modes, strict=True):
        row = results["modes"][mode]
        labels, p50s, p99s, texts = [], [], [], []
        for kind in ("tasks", "preview"):
            for phase in ("quiet", "flood"):
                labels.append(f"{'list tasks' if kind == 'tasks' else 'preview'}\n{phase}")
                p50s.append(row[kind][phase]["p50_ms"])
                p99s.append(row[kind][phase]["p99_ms"])
                ratio = f"\n×{row[kind]['p99_ratio']:.1f}" if phase == "flood" else ""
                texts.append(f"{p99s[-1]:,.1f} ms{ratio}")
        positions = list(range(len(labels)))
        colours = [plotting.BASELINE, plotting.MEASURED] * 2
        bars = axis.bar(positions, p99s, color=colours)
        points = axis.scatter(positions, p50s, color=plotting.P50, zorder=3)
        plotting.label_bars(axis, bars, texts)
        axis.set_xticks(positions, labels, fontsize=8)
        axis.set_yscale("log")
        answers = ", ".join(f"{status}: {count:,}" for status, count in sorted(row["flood_answers"].items()))
        axis.set_title(f"{mode} (flooder's answers {answers})", fontsize=9)
        axis.grid(axis="y", color="0.9")
        axis.legend(
            [bars[0], bars[1], points],
            ["p99, quiet", "p99, flood (× quiet)", "p50"],
            loc="upper left",
            fontsize=8,
        )
    highest = max(
        row[kind]["flood"]["p99_ms"] for row in results["modes"].values() for kind in ("tasks", "preview")
    )
    axes[0][0].set_ylim(top=highest * 6)  # room for the labels above the bars (log scale)
    axes[0][0].set_ylabel("latency, one request at a time (ms, log)")
    return plotting.save_figure(
        run,
        figure,
        f"Other users' reads while one user floods {results['flood_width']} costly previews"
        f" ({results['reads']} reads a phase)",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=400, help="reads per phase (half lists, half previews)")
    parser.add_argument("--flood", type=int, default=64, help="costly previews the flooder keeps in flight")
    parser.add_argument("--modes", default="capped,uncapped", help=f"comma-separated, of {', '.join(MODES)}")
    options = parser.parse_args()
    main(reads=options.reads, width=options.flood, modes=options.modes.split(","))
