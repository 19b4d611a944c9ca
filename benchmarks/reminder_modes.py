"""10,000 reminders as CronJobs and as Dapr jobs: what is stored where, time to schedule, fire lag.

Real parts, each a process of its own as in a cluster: the API emulator
(``python -m kube_emulator``), a throw-away PostgreSQL, the operator as
``todo-operator run`` (system clock, Dapr relay off), and for ``dapr-jobs`` the
Dapr double (``python -m todo_devstack.dapr --job-app-url``) as the sidecar and
the Scheduler, triggering the operator's ``/job/<name>``. This process creates
100 Tasks and then ``REMINDERS`` Reminders (32 at a time) and watches.

Measured per mode:

* time to schedule all: from the first Reminder created until every one is
  ``Scheduled`` in PostgreSQL and has its trigger (a CronJob in the API
  server; a job in the Scheduler);
* what is stored: the trigger objects and their bytes (CronJobs as the API
  server returns them; jobs as the Scheduler keeps them: the double's wire form);
* fire lag (``dapr-jobs``): the reminders fall due over one minute starting
  ``LEAD`` seconds after the first create; lag = trigger time - due time, as
  the double records it (p50, p99), and every e-mail arrives once. There is no
  CronJob controller in the emulator, so CronJobs' fire lag is not measured
  here: Kubernetes' controller checks every 10 s and lists every CronJob to do
  so.

Run alone on an idle machine (about ten minutes):
``.venv/bin/python benchmarks/reminder_modes.py [--reminders 10000]``.
Writes ``benchmarks/results/reminder_modes.json`` and ``docs/images/reminder_modes.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import plotting
import psycopg

from todo_devstack.postgres import ThrowawayPostgres, find_bin_dir, free_port
from todo_devstack.smtp import SmtpSink
from todo_operator.store import schema

ROOT = pathlib.Path(__file__).resolve().parents[1]
TASKS = 100
NAMESPACE = "default"


def task(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"name": f"task-{index}"},
        "spec": {"title": f"Task {index}", "owner": "alice@example.com", "dueAt": "2027-06-01T09:00:00Z"},
    }


def reminder(index: int, at: datetime) -> dict[str, Any]:
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "Reminder",
        "metadata": {"name": f"r-{index}"},
        "spec": {"taskRef": {"name": f"task-{index % TASKS}"}, "at": at.isoformat(), "channel": "email"},
    }


async def create(session: aiohttp.ClientSession, url: str, bodies: list[dict[str, Any]]) -> None:
    queue = iter(bodies)

    async def worker() -> None:
        for body in queue:
            async with session.post(url, json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"create: {response.status} {await response.text()}")

    await asyncio.gather(*(worker() for _ in range(32)))


def scheduled_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as connection:
        # Sent ones were scheduled first (a short lead lets the first fire while others are made).
        row = connection.execute(
            "SELECT count(*) FROM reminders WHERE phase IN ('Scheduled', 'Sent')"
        ).fetchone()
    return int(row[0]) if row else 0


async def triggers_made(session: aiohttp.ClientSession, mode: str, *, api: str, dapr: str | None) -> int:
    """Triggers made so far, those already fired and gone included (jobs; a CronJob stays)."""
    if mode == "cronjob":
        return (await triggers_stored(session, mode, api=api, dapr=dapr))[0]
    async with session.get(f"{dapr}/_devstack/jobs") as response:
        return int((await response.json())["names"])


async def triggers_stored(
    session: aiohttp.ClientSession, mode: str, *, api: str, dapr: str | None
) -> tuple[int, int]:
    """(objects, bytes) of the reminders' triggers where they are kept."""
    if mode == "cronjob":
        async with session.get(f"{api}/apis/batch/v1/namespaces/{NAMESPACE}/cronjobs") as response:
            items = (await response.json())["items"]
        return len(items), sum(len(json.dumps(item, separators=(",", ":"))) for item in items)
    assert dapr is not None
    async with session.get(f"{dapr}/_devstack/jobs") as response:
        report = await response.json()
    return report["jobs"], report["stored_bytes"]


async def run_mode(
    mode: str, *, count: int, lead: float, api: str, dsn: str, dapr: str | None, smtp: SmtpSink | None
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        base = f"{api}/apis/todo.dev/v1alpha1/namespaces/{NAMESPACE}"
        await create(session, f"{base}/tasks", [task(i) for i in range(TASKS)])
        await asyncio.sleep(5)  # the tasks are recorded: the reminders find them
        began = time.perf_counter()
        start = datetime.now(UTC) + timedelta(seconds=lead)
        due = [start + timedelta(seconds=60 * i / count) for i in range(count)]
        await create(session, f"{base}/reminders", [reminder(i, due[i]) for i in range(count)])
        created = time.perf_counter() - began
        while True:
            done = await asyncio.to_thread(scheduled_rows, dsn)
            stored = await triggers_made(session, mode, api=api, dapr=dapr)
            print(
                f"  {mode}: {time.perf_counter() - began:6.1f} s  {done:6,} scheduled, {stored:6,} triggers",
                flush=True,
            )
            if done >= count and stored >= count:
                break
            await asyncio.sleep(2)
        scheduled = time.perf_counter() - began
        objects, size = await triggers_stored(session, mode, api=api, dapr=dapr)
        result: dict[str, Any] = {
            "mode": mode,
            "reminders": count,
            "created_seconds": created,
            "scheduled_seconds": scheduled,
            "trigger_objects": objects,
            "trigger_bytes": size,
            "bytes_per_trigger": size / max(objects, 1),
        }
        if mode == "dapr-jobs" and smtp is not None:
            result |= await fire(session, dapr, smtp, count=count, last_due=due[-1])
    return result


async def fire(
    session: aiohttp.ClientSession, dapr: str | None, smtp: SmtpSink, *, count: int, last_due: datetime
) -> dict[str, Any]:
    deadline = last_due + timedelta(minutes=3)
    while len(smtp.messages) < count and datetime.now(UTC) < deadline:  # noqa: ASYNC110  # progress poll
        await asyncio.sleep(1)
    async with session.get(f"{dapr}/_devstack/jobs") as response:
        report = await response.json()
    succeeded = [t["lag"] for t in report["triggers"] if t["outcome"] == "succeeded"]
    quantiles = statistics.quantiles(succeeded, n=100) if len(succeeded) > 1 else [0.0] * 99
    per_reminder = Counter(message["X-Todo-Reminder"] for message in smtp.messages)
    return {
        "emails": len(smtp.messages),
        "emails_sent_twice": sum(1 for n in per_reminder.values() if n > 1),
        "triggers": len(report["triggers"]),
        "trigger_outcomes": dict(Counter(t["outcome"] for t in report["triggers"])),
        "fire_lag_p50_seconds": quantiles[49],
        "fire_lag_p99_seconds": quantiles[98],
        "fire_lag_max_seconds": max(succeeded, default=0.0),
    }


def start(
    args: list[str], env: dict[str, str] | None = None, log: pathlib.Path | None = None
) -> subprocess.Popen[str]:
    """A process whose first line of output is read here (its address); with ``log``, all of it to a file."""
    if log is None:
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    with log.open("w") as output:
        return subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)


def one_mode(mode: str, *, count: int, lead: float, database: ThrowawayPostgres) -> dict[str, Any]:
    dsn = database.create_database(mode.replace("-", "_"))
    schema.migrate_up(dsn)
    crds = [f"--crd={file}" for file in sorted((ROOT / "crds").glob("*.yaml"))]
    emulator = start(
        [
            sys.executable,
            "-m",
            "kube_emulator",
            *crds,
            "--port",
            str(free_port()),
            "--event-log-size",
            str(8 * count),
        ]
    )
    processes: list[subprocess.Popen[str]] = [emulator]
    try:
        assert emulator.stdout is not None
        api = emulator.stdout.readline().split()[-1]
        with SmtpSink() as smtp:
            environment = {
                **{key: value for key, value in os.environ.items() if not key.startswith("TODO_")},
                "TODO_DATABASE_URL": dsn,
                "TODO_KUBE_API_URL": api,
                "TODO_DAPR_ENABLED": "false",
                "TODO_LOG_LEVEL": "WARNING",
                "TODO_LOG_FORMAT": "text",
                "TODO_REMINDER_DELIVERY": mode,
                "TODO_SMTP_PORT": str(smtp.port),
                "TODO_LISTEN_NOTIFY": "true",
            }
            dapr = None
            if mode == "dapr-jobs":
                app_port, dapr_port = free_port(), free_port()
                double = start(
                    [
                        sys.executable,
                        "-m",
                        "todo_devstack.dapr",
                        "--port",
                        str(dapr_port),
                        "--count-only",
                        "--job-app-url",
                        f"http://127.0.0.1:{app_port}",
                    ]
                )
                processes.append(double)
                assert double.stdout is not None
                double.stdout.readline()
                dapr = f"http://127.0.0.1:{dapr_port}"
                environment |= {"TODO_DAPR_HTTP_ENDPOINT": dapr, "TODO_DAPR_APP_PORT": str(app_port)}
            log = pathlib.Path(tempfile.gettempdir()) / f"bench-reminder-modes-{mode}-operator.log"
            print(f"  the operator logs to {log}")
            operator = start(
                [str(pathlib.Path(sys.executable).with_name("todo-operator")), "run"],
                env=environment,
                log=log,
            )
            processes.append(operator)
            time.sleep(3)  # the operator starts its watches
            return asyncio.run(run_mode(mode, count=count, lead=lead, api=api, dsn=dsn, dapr=dapr, smtp=smtp))
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def plot(run: plotting.Run, results: dict[str, Any]) -> pathlib.Path:
    """Left: seconds to schedule all. Middle: bytes per trigger. Right: the Dapr jobs' fire lag."""
    figure, (timing, size, lag) = plotting.new_figure(1, 3)
    modes = [row["mode"] for row in results["modes"]]
    colours = [plotting.BASELINE, plotting.MEASURED]
    bars = timing.bar(modes, [row["scheduled_seconds"] for row in results["modes"]], color=colours)
    plotting.label_bars(timing, bars, [f"{row['scheduled_seconds']:.0f} s" for row in results["modes"]])
    timing.set_ylabel(f"seconds to schedule {results['reminders']:,}")
    bars = size.bar(modes, [row["bytes_per_trigger"] for row in results["modes"]], color=colours)
    plotting.label_bars(size, bars, [f"{row['bytes_per_trigger']:,.0f} B" for row in results["modes"]])
    size.set_ylabel("bytes stored per trigger")
    jobs = next(row for row in results["modes"] if row["mode"] == "dapr-jobs")
    bars = lag.bar(
        ["p50", "p99", "max"],
        [jobs["fire_lag_p50_seconds"], jobs["fire_lag_p99_seconds"], jobs["fire_lag_max_seconds"]],
        color=[plotting.P50, plotting.P99, plotting.OTHER],
    )
    plotting.label_bars(
        lag,
        bars,
        [
            f"{value:.2f} s"
            for value in (
                jobs["fire_lag_p50_seconds"],
                jobs["fire_lag_p99_seconds"],
                jobs["fire_lag_max_seconds"],
            )
        ],
    )
    lag.set_ylabel("Dapr jobs: fire lag, seconds")
    return plotting.save_figure(
        run, figure, f"{results['reminders']:,} reminders: CronJobs against Dapr jobs"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument(
        "--lead",
        type=float,
        default=0.0,
        help="seconds from the first create to the first due time (default: measured)",
    )
    arguments = parser.parse_args()
    run = plotting.Run.start("reminder_modes")
    print(f"load average: {os.getloadavg()}")
    with (
        tempfile.TemporaryDirectory(prefix="bench-reminder-modes-") as folder,
        ThrowawayPostgres(base_dir=pathlib.Path(folder), bin_dir=find_bin_dir()) as database,
    ):
        cronjobs = one_mode("cronjob", count=arguments.reminders, lead=24 * 3600, database=database)
        # The Dapr jobs fall due once scheduling is surely over (the CronJobs' time, half again, and
        # half a minute): a lag then measures the Scheduler and the trigger, not the burst.
        lead = arguments.lead or 1.5 * cronjobs["scheduled_seconds"] + 30
        jobs = one_mode("dapr-jobs", count=arguments.reminders, lead=lead, database=database)
    run.finish()
    results = {
        "reminders": arguments.reminders,
        "tasks": TASKS,
        "lead_seconds": lead,
        "modes": [cronjobs, jobs],
    }
    for row in results["modes"]:
        print(
            f"{row['mode']}: scheduled {row['reminders']:,} in {row['scheduled_seconds']:.0f} s,"
            f" {row['trigger_objects']:,} triggers, {row['trigger_bytes'] / 1e6:.1f} MB"
            f" ({row['bytes_per_trigger']:,.0f} B each)"
        )
    print(
        f"dapr-jobs: {jobs['emails']:,} e-mails ({jobs['emails_sent_twice']} twice), fire lag"
        f" p50 {jobs['fire_lag_p50_seconds']:.3f} s, p99 {jobs['fire_lag_p99_seconds']:.3f} s,"
        f" max {jobs['fire_lag_max_seconds']:.3f} s; triggers {jobs['trigger_outcomes']}"
    )
    plotting.done(plotting.write_results(run, results), plot(run, results))


if __name__ == "__main__":
    main()
