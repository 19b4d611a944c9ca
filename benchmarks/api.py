"""The REST shim's list endpoint over 1,000,000 tasks of 1,000 users: latency, throughput, query plan.

Real parts: a throw-away PostgreSQL filled with COPY, ``todo-operator api``
as a process of its own (uvicorn), HTTP on loopback with real JWTs. Each
request lists one user's tasks with a filter (priority), a sort (due date)
and a full-text search (one word of the titles), 50 per page.

Run: .venv/bin/python benchmarks/api.py [--tasks 1000000] [--users 1000] [--requests 1000]
Targets (issue 6): p99 <= 25 ms; the query plan uses indexes (printed).
Writes ``benchmarks/results/api.json`` and the plot ``docs/images/api.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import jwt
import plotting
import psycopg

from todo_devstack.postgres import ThrowawayPostgres, free_port
from todo_operator.store import queries, schema

WORDS = [
    "passport",
    "report",
    "review",
    "invoice",
    "garden",
    "dentist",
    "taxes",
    "groceries",
    "plants",
    "laundry",
    "budget",
    "visa",
]
PRIORITIES = ("low", "medium", "high", "urgent")
SECRET = "a-benchmark-secret-of-at-least-32-bytes"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TARGET_P99_MS = 25
CONCURRENCY = 8


def fill(dsn: str, *, tasks: int, users: int) -> None:
    rng = random.Random(7)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY tasks (uid, namespace, name, owner, title, description, priority, tags, due_at, completed,"
            " phase, generation, spec, created_at, updated_at) FROM STDIN"
        ) as copy:
            for index in range(tasks):
                owner = f"user{index % users}@example.com"
                words = rng.sample(WORDS, 2)
                completed = rng.random() < 0.2
                created = NOW - timedelta(minutes=rng.randrange(0, 200_000))
                copy.write_row(
                    (
                        uuid.uuid4(),
                        "bench",
                        f"t{index}",
                        owner,
                        f"{words[0].title()} {words[1]} {index}",
                        "",
                        rng.choice(PRIORITIES),
                        rng.sample(WORDS, 1),
                        NOW + timedelta(minutes=rng.randrange(-90_000, 90_000)),
                        completed,
                        "Completed" if completed else "Open",
                        1,
                        "{}",
                        created,
                        created,
                    )
                )
        connection.execute("ANALYZE tasks")
        connection.commit()


def token(user: int) -> str:
    claims = {"sub": f"user{user}@example.com", "aud": "todo-api", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def request_path(rng: random.Random) -> str:
    return f"/api/v1/tasks?priority={rng.choice(PRIORITIES)}&q={rng.choice(WORDS)}&sort=due&limit=50"


async def measure(url: str, *, users: int, requests: int, concurrency: int) -> tuple[list[float], float]:
    """(latencies one request at a time, in the order sent; requests/s with ``concurrency`` clients)."""
    rng = random.Random(11)
    tokens = [token(user) for user in range(users)]
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        # Latency: one request at a time.
        for _ in range(requests):
            headers = {"Authorization": f"Bearer {rng.choice(tokens)}"}
            started = time.perf_counter()
            response = await client.get(request_path(rng), headers=headers)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        # Throughput: ``concurrency`` clients for a fixed number of requests.
        queue = [(request_path(rng), rng.choice(tokens)) for _ in range(requests)]

        async def worker() -> None:
            while queue:
                path, bearer = queue.pop()
                answer = await client.get(path, headers={"Authorization": f"Bearer {bearer}"})
                assert answer.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = requests / (time.perf_counter() - started)
    return latencies, rate


def explain(dsn: str) -> str:
    """The plan of the statement the endpoint runs (built by the same code), for one user."""
    query = queries.TaskQuery(
        owner="user7@example.com",
        namespace="bench",
        now=NOW,
        priorities=("high",),
        text="passport",
        sort="due",
        descending=False,
    )
    conditions, params = queries._task_conditions(query)  # the endpoint's own WHERE clause
    order = queries.sort_expression("due", descending=False)
    statement = (
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT t.uid"
        " FROM tasks t LEFT JOIN recurring_tasks r ON r.uid = t.recurring_task_uid"
        f" WHERE {' AND '.join(conditions)} ORDER BY {order} ASC, t.uid ASC LIMIT 50"
    )
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(statement, params).fetchall()
    return "\n".join(row[0] for row in rows)


def main(*, tasks: int, users: int, requests: int) -> None:
    run = plotting.Run.start("api")
    with (
        tempfile.TemporaryDirectory(dir=pathlib.Path.cwd()) as folder,
        ThrowawayPostgres(base_dir=pathlib.Path(folder) / "pg") as database,
    ):
        dsn = database.create_database("bench")
        schema.migrate_up(dsn)
        started = time.perf_counter()
        fill(dsn, tasks=tasks, users=users)
        print(f"{tasks:,} tasks for {users:,} users loaded in {time.perf_counter() - started:.0f} s")

        port = free_port()
        env = {
            **os.environ,
            "TODO_DATABASE_URL": dsn,
            "TODO_KUBE_API_URL": "http://127.0.0.1:9",  # never called: lists read PostgreSQL
            "TODO_API_JWT_SECRET": SECRET,
            "TODO_API_NAMESPACE": "bench",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "todo_operator.cli", "api", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            in_order, rate = asyncio.run(
                measure(url, users=users, requests=requests, concurrency=CONCURRENCY)
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
        run.finish()
        latencies = sorted(in_order)
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)] * 1000
        print(f"list (priority filter, sort by due, text search, 50 per page), {requests} requests:")
        print(
            f"  latency one at a time: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        print(f"  throughput with {CONCURRENCY} concurrent clients: {rate:.0f} requests/s")
        print("query plan (EXPLAIN ANALYZE):")
        plan = explain(dsn)
        print(plan)
    results = {
        "tasks": tasks,
        "users": users,
        "requests": requests,
        "targets": {"p99_ms": TARGET_P99_MS},
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": latencies[-1] * 1000,
        "concurrency": CONCURRENCY,
        "requests_per_second": rate,
        "latencies_ms": [round(value * 1000, 3) for value in in_order],  # one at a time, in the order sent
        "plan": plan.splitlines(),
    }
    plotting.done(plotting.write_results(run, results), plot(run, results))


def plot(run: plotting.Run, results: dict[str, Any]) -> pathlib.Path:
    """Left: the latency histogram with p50, p99 and the target. Right: each request's latency in order."""
    figure, (histogram, sequence) = plotting.new_figure(1, 2, width_ratios=(3, 2), sharey=False)
    latencies = results["latencies_ms"]
    marks = {"p50": results["p50_ms"], "p99": results["p99_ms"]}
    target = results["targets"]["p99_ms"]
    top = max(max(latencies), target) * 1.05
    histogram.hist(latencies, bins=80, range=(0, top), color=plotting.MEASURED, label="requests")
    plotting.percentile_lines(histogram, marks, vertical=True, unit=" ms")
    plotting.target_line(histogram, target, f"target p99 {target} ms", vertical=True)
    histogram.set_xlim(0, top)
    histogram.set_xlabel("latency (ms)")
    histogram.set_ylabel("requests")
    histogram.set_title(
        f"one request at a time ({len(latencies):,}); max {results['max_ms']:,.1f} ms", fontsize=9
    )
    histogram.legend(loc="upper right", fontsize=8)

    sequence.scatter(range(1, len(latencies) + 1), latencies, s=4, color=plotting.MEASURED, linewidths=0)
    plotting.percentile_lines(sequence, marks, unit=" ms")
    plotting.target_line(sequence, target, f"target {target} ms")
    sequence.set_ylim(0, top)
    sequence.set_xlabel("request, in the order sent")
    sequence.set_ylabel("latency (ms)")
    sequence.set_title(
        f"{CONCURRENCY} concurrent clients: {results['requests_per_second']:,.0f} requests/s", fontsize=9
    )
    sequence.grid(color="0.9")
    return plotting.save_figure(
        run,
        figure,
        f"REST API list endpoint (filter, sort, text search, 50 a page):"
        f" {results['tasks']:,} tasks, {results['users']:,} users",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=1_000)
    options = parser.parse_args()
    main(tasks=options.tasks, users=options.users, requests=options.requests)
