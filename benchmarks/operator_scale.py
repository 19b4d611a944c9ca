"""10,000 RecurringTasks and one operator replica: time to reconcile, memory, tasks, idle CPU.

Real parts, each a process of its own as in a cluster: the API emulator
(``python -m kube_emulator``), a throw-away PostgreSQL, and
the operator as ``todo-operator run`` (Dapr off: this measures the operator,
benchmarks/outbox.py the relay). This process only creates the objects and
watches.

Measured:

* time from the first create until every RecurringTask has its first
  occurrence and that occurrence's own handler has recorded it in PostgreSQL
  (both objects of each pair handled), and reconciles per second (Kopf handler calls,
  from the operator's own ``todo_reconcile_duration_seconds_count``);
* the operator's peak RSS (``VmHWM`` in /proc), sampled RSS over time, and the
  asyncio tasks in its loop (``todo_asyncio_tasks``);
* timers and daemons registered with Kopf (the design has none: one scheduler
  loop serves every due date);
* idle CPU: the operator's CPU seconds over a quiet period after the burst.

Run alone on an idle machine: ``.venv/bin/python benchmarks/operator_scale.py``
(``--objects 10000``, ``--idle 30``). Writes ``benchmarks/results/operator_scale.json``
and the plot ``docs/images/operator_scale.png``.
Targets (issue 10): memory <= 300 MB, no per-object timer or daemon, idle CPU near zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from todo_devstack.postgres import ThrowawayPostgres, find_bin_dir, free_port
from todo_operator.operator import handlers
from todo_operator.operator.settings import OperatorSettings
from todo_operator.store import schema

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "operator_scale.json"
PLOT = ROOT / "docs" / "images" / "operator_scale.png"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    seconds: float
    reconciled: int
    rss_mb: float
    asyncio_tasks: float


@dataclass
class Result:
    objects: int
    created_seconds: float = 0.0
    reconciled_seconds: float = 0.0
    reconciles: float = 0.0
    peak_rss_mb: float = 0.0
    rss_after_mb: float = 0.0
    peak_asyncio_tasks: float = 0.0
    asyncio_tasks_idle: float = 0.0
    kopf_timers_and_daemons: int = 0
    operator_cpu_seconds: float = 0.0  # over the burst, until all were reconciled
    emulator_cpu_seconds: float = 0.0
    idle_seconds: float = 0.0
    idle_cpu_seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    samples: list[Sample] = field(default_factory=list)


def recurring_task(index: int) -> dict[str, Any]:
    start = (datetime.now(tz=UTC) + timedelta(days=1 + index % 7)).strftime("%Y-%m-%dT%H:%M:00")
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "RecurringTask",
        "metadata": {"name": f"chore-{index:05d}", "namespace": "default"},
        "spec": {
            "schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO,TH", "start": start, "timeZone": "Europe/Berlin"},
            "taskTemplate": {"title": f"Chore {index}", "owner": f"user-{index % 1000}@example.com"},
        },
    }


def kopf_timers_and_daemons() -> int:
    """Timers and daemons in the registry the operator runs (built here the same way)."""
    settings = OperatorSettings(database_url="postgresql://unused")
    reconcilers: Any = handlers.Reconcilers(recurring_tasks=None, tasks=None, reminders=None)  # type: ignore[arg-type]
    registry = handlers.build_registry(reconcilers=reconcilers, settings=settings)
    return len(list(registry._spawning.get_all_handlers()))


def process_memory_mb(pid: int, key: str) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    try:
        async with session.get(url) as response:
            text = await response.text()
    except aiohttp.ClientError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def reconciled(dsn: str) -> int:
    """RecurringTasks done: the first occurrence made, and recorded by the occurrence's own handler."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM recurring_tasks WHERE current_task IS NOT NULL),"
            " (SELECT count(*) FROM tasks WHERE recurring_task_uid IS NOT NULL)"
        ).fetchone()
    return min(int(row[0]), int(row[1])) if row else 0


async def create_all(session: aiohttp.ClientSession, api: str, count: int, concurrency: int = 32) -> None:
    url = f"{api}/apis/todo.dev/v1alpha1/namespaces/default/recurringtasks"
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            async with session.post(url, json=recurring_task(index)) as response:
                if response.status != 201:
                    raise RuntimeError(f"create {index}: {response.status} {await response.text()}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(
    *, objects: int, idle: float, api: str, dsn: str, operator: int, emulator: int, metrics_url: str
) -> Result:
    result = Result(objects=objects, load_before=os.getloadavg())
    result.kopf_timers_and_daemons = kopf_timers_and_daemons()
    async with aiohttp.ClientSession() as session:
        began = time.perf_counter()
        creating = asyncio.create_task(create_all(session, api, objects))
        done = 0
        while done < objects:
            await asyncio.sleep(1.0)
            if creating.done() and not result.created_seconds:
                await creating
                result.created_seconds = time.perf_counter() - began
            done = await asyncio.to_thread(reconciled, dsn)
            figures = await scrape(session, metrics_url)
            result.samples.append(
                Sample(
                    seconds=time.perf_counter() - began,
                    reconciled=done,
                    rss_mb=process_memory_mb(operator, "VmRSS"),
                    asyncio_tasks=figures.get("todo_asyncio_tasks", float("nan")),
                )
            )
            print(
                f"  {result.samples[-1].seconds:6.1f} s  {done:6,} reconciled  "
                f"RSS {result.samples[-1].rss_mb:6.1f} MB  tasks {result.samples[-1].asyncio_tasks:,.0f}",
                flush=True,
            )
        result.reconciled_seconds = time.perf_counter() - began
        result.operator_cpu_seconds = process_cpu_seconds(operator)
        result.emulator_cpu_seconds = process_cpu_seconds(emulator)
        await creating
        figures = await scrape(session, metrics_url)
        result.reconciles = figures.get("todo_reconcile_duration_seconds_count", 0.0)
        # The burst is over: Kopf's per-object workers exit after their idle timeout. Then, quiet.
        await asyncio.sleep(10)
        cpu_before = process_cpu_seconds(operator)
        quiet_began = time.perf_counter()
        await asyncio.sleep(idle)
        result.idle_seconds = time.perf_counter() - quiet_began
        result.idle_cpu_seconds = process_cpu_seconds(operator) - cpu_before
        figures = await scrape(session, metrics_url)
        result.asyncio_tasks_idle = figures.get("todo_asyncio_tasks", float("nan"))
    result.peak_rss_mb = process_memory_mb(operator, "VmHWM")
    result.rss_after_mb = process_memory_mb(operator, "VmRSS")
    result.peak_asyncio_tasks = max((s.asyncio_tasks for s in result.samples), default=0.0)
    return result


def plot(result: Result, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [s.seconds for s in result.samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(seconds, [s.reconciled for s in result.samples], color="tab:blue")
    top.set_ylabel("RecurringTasks reconciled")
    top.set_title(f"{result.objects:,} RecurringTasks, one operator replica")
    bottom.plot(seconds, [s.rss_mb for s in result.samples], color="tab:red", label="RSS (MB)")
    bottom.axhline(300, color="tab:red", linestyle="--", linewidth=0.8, label="target 300 MB")
    bottom.set_ylabel("MB")
    bottom.set_xlabel("seconds since the first create")
    tasks = bottom.twinx()
    tasks.plot(seconds, [s.asyncio_tasks for s in result.samples], color="tab:green", label="asyncio tasks")
    tasks.set_ylabel("asyncio tasks")
    bottom.legend(loc="upper left")
    tasks.legend(loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def report(result: Result) -> None:
    print(f"load average before: {result.load_before}")
    print(f"objects:              {result.objects:,} RecurringTasks (each: one occurrence Task)")
    print(f"all created after:    {result.created_seconds:.1f} s")
    print(
        f"all reconciled after: {result.reconciled_seconds:.1f} s "
        f"({result.objects / result.reconciled_seconds:,.0f} RecurringTasks/s)"
    )
    per_second = result.reconciles / result.reconciled_seconds
    print(f"Kopf handler calls:   {result.reconciles:,.0f} ({per_second:,.0f}/s)")
    print(
        f"CPU during the burst: operator {result.operator_cpu_seconds:.1f} s,"
        f" API emulator {result.emulator_cpu_seconds:.1f} s"
    )
    print(f"operator peak RSS:    {result.peak_rss_mb:.0f} MB (after: {result.rss_after_mb:.0f} MB)")
    print(
        f"asyncio tasks:        peak {result.peak_asyncio_tasks:,.0f}, idle {result.asyncio_tasks_idle:,.0f}"
    )
    print(f"Kopf timers/daemons:  {result.kopf_timers_and_daemons}")
    print(
        f"idle CPU:             {result.idle_cpu_seconds:.2f} s over {result.idle_seconds:.0f} s "
        f"({100 * result.idle_cpu_seconds / result.idle_seconds:.1f} % of a core)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=30.0, help="quiet seconds to measure idle CPU over")
    arguments = parser.parse_args()
    api_port, metrics_port = free_port(), free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as folder,
        ThrowawayPostgres(base_dir=pathlib.Path(folder), bin_dir=find_bin_dir()) as database,
    ):
        dsn = database.create_database("scale")
        schema.migrate_up(dsn)
        emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kube_emulator",
                *(f"--crd={file}" for file in sorted((ROOT / "crds").glob("*.yaml"))),
                "--port",
                str(api_port),
                # every object's events must stay resumable while the operator catches up
                "--event-log-size",
                str(8 * arguments.objects),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        operator: subprocess.Popen[str] | None = None
        try:
            assert emulator.stdout is not None
            api = emulator.stdout.readline().split()[-1]
            environment = {
                **os.environ,
                "TODO_DATABASE_URL": dsn,
                "TODO_KUBE_API_URL": api,
                "TODO_DAPR_ENABLED": "false",
                "TODO_METRICS_PORT": str(metrics_port),
                "TODO_METRICS_HOST": "127.0.0.1",
                "TODO_LOG_LEVEL": "WARNING",
                "TODO_LOG_FORMAT": "text",
            }
            operator = subprocess.Popen(
                [str(pathlib.Path(sys.executable).with_name("todo-operator")), "run"], env=environment
            )
            time.sleep(3)  # the operator starts its watches
            result = asyncio.run(
                measure(
                    objects=arguments.objects,
                    idle=arguments.idle,
                    api=api,
                    dsn=dsn,
                    operator=operator.pid,
                    emulator=emulator.pid,
                    metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
                )
            )
        finally:
            for process in (operator, emulator):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)
    report(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(asdict(result), indent=1) + "\n")
    plot(result, PLOT)
    print(f"wrote {RESULTS.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
