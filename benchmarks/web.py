"""The web page: first load of "my tasks" with 1,000 tasks, and live update latency from kubectl.

Real parts, as tests/api/web runs them: the API emulator, a throw-away
PostgreSQL, the operator and its relay publishing to the Dapr double, which
delivers task-updates to the REST API and its page, and Debian's chromium
driven by Playwright. The API runs in this process beside the operator (the
worse case: in a cluster it has a process of its own).

- First load: 1,000 tasks of the signed-in user (written with COPY, as
  benchmarks/api.py does), then ``--loads`` navigations to ``/`` in fresh
  browser contexts (nothing cached): time to the load event and bytes
  transferred (the document and its assets, Navigation/Resource Timing).
  Baseline in the same run: the REST API's JSON for the same page
  (``GET /api/v1/tasks?sort=due&status=todo&limit=100``), timed over HTTP.
- Live: ``--updates`` times, ``kubectl patch`` a task's title and time until
  the open page shows it (the page records when its DOM changed). Baseline
  in the same run: how long the ``kubectl patch`` itself takes.

Run: .venv/bin/python benchmarks/web.py [--loads 30] [--updates 100]
Targets (issue 22): first load <= 1 s and <= 200 KB; live p99 <= 1 s.
Writes ``benchmarks/results/web.json``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
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
import psycopg
from playwright.sync_api import sync_playwright
from pydantic import SecretStr

import kube_emulator as apiserver
from todo_devstack.dapr import App, DaprThread
from todo_devstack.demo import RestApiThread
from todo_devstack.operator_thread import OperatorThread
from todo_devstack.postgres import ThrowawayPostgres, free_port
from todo_operator.api.settings import ApiSettings
from todo_operator.domain import crds
from todo_operator.events.relay import RelaySettings
from todo_operator.operator.settings import OperatorSettings
from todo_operator.store import schema

USER = "alice@example.com"
NAMESPACE = "default"
TOKEN = "benchmark-dapr-app-token-0123456789"
SECRET = "a-benchmark-secret-of-at-least-32-bytes"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RESULTS = pathlib.Path(__file__).parent / "results" / "web.json"


def fill(dsn: str, *, tasks: int) -> None:
    now = datetime.now(tz=UTC)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        columns = "uid, namespace, name, owner, title, description, priority, tags, due_at, completed,"
        columns += " phase, generation, spec, created_at, updated_at"
        with cursor.copy(f"COPY tasks ({columns}) FROM STDIN") as copy:
            for index in range(tasks):
                due = now + timedelta(hours=index - 100)
                copy.write_row(
                    (
                        uuid.uuid4(),
                        NAMESPACE,
                        f"bench-{index}",
                        USER,
                        f"Benchmark task number {index}",
                        "",
                        ("low", "medium", "high", "urgent")[index % 4],
                        ["bench"],
                        due,
                        False,
                        "Overdue" if due < now else "Open",
                        1,
                        json.dumps({"title": f"t{index}"}),
                        now,
                        now,
                    )
                )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def first_loads(browser: Any, url: str, loads: int) -> dict[str, Any]:
    times, sizes = [], []
    for _ in range(loads):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        page.get_by_role("button", name=f"Sign in as {USER} (demo)").click()
        page.wait_for_url(url + "/")
        page.goto(url + "/", wait_until="load")  # signed in, nothing cached
        timing = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " const r = performance.getEntriesByType('resource');"
            " return {load: n.loadEventEnd - n.startTime, bytes: n.transferSize"
            " + r.reduce((s, e) => s + e.transferSize, 0),"
            " rows: document.querySelectorAll('li.task').length}; }"
        )
        times.append(timing["load"] / 1000)
        sizes.append(timing["bytes"])
        rows = timing["rows"]
        context.close()
    return {
        "load_p50_s": statistics.median(times),
        "load_max_s": max(times),
        "bytes_max": max(sizes),
        "rows": rows,
    }


def api_baseline(url: str, loads: int) -> float:
    token_times = []
    token = jwt.encode(
        {"sub": USER, "aud": "todo-api", "exp": int(time.time()) + 3600, "iat": int(time.time())},
        SECRET,
        algorithm="HS256",
    )
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(loads):
            started = time.perf_counter()
            client.get(
                "/api/v1/tasks", params={"sort": "due", "status": "todo", "limit": 100}
            ).raise_for_status()
            token_times.append(time.perf_counter() - started)
    return statistics.median(token_times)


def live_updates(browser: Any, url: str, kubeconfig: pathlib.Path, updates: int) -> dict[str, Any]:
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig), "-n", NAMESPACE]
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/")
    page.get_by_role("button", name=f"Sign in as {USER} (demo)").click()
    page.goto(url + "/tasks/new")
    page.get_by_label("Title").fill("live-0")
    page.get_by_role("button", name="Add task").click()
    page.goto(url + "/?sort=-created")
    page.wait_for_selector("body[data-live=connected]")
    page.evaluate(
        "() => { window.seen = {}; new MutationObserver(() => {"
        " for (const a of document.querySelectorAll('a.title'))"
        " if (!(a.textContent in window.seen)) window.seen[a.textContent] = Date.now(); })"
        ".observe(document.getElementById('task-list'), {childList: true, subtree: true}); }"
    )
    items = json.loads(
        subprocess.run([*kubectl, "get", "tasks", "-o", "json"], capture_output=True, check=True).stdout
    )
    name = next(i["metadata"]["name"] for i in items["items"] if i["spec"]["title"] == "live-0")
    latencies, patches = [], []
    for number in range(1, updates + 1):
        title = f"live-{number}"
        started = time.time()
        subprocess.run(
            [
                *kubectl,
                "patch",
                "task",
                name,
                "--type",
                "merge",
                "-p",
                json.dumps({"spec": {"title": title}}),
            ],
            capture_output=True,
            check=True,
        )
        patches.append(time.time() - started)
        page.wait_for_function("title => title in window.seen", arg=title, timeout=10_000)
        latencies.append(page.evaluate("title => window.seen[title]", title) / 1000 - started)
    context.close()
    return {
        "p50_s": statistics.median(latencies),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies),
        "kubectl_patch_p50_s": statistics.median(patches),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument("--updates", type=int, default=100)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        ThrowawayPostgres(base_dir=pathlib.Path(folder)) as database,
    ):
        dsn = database.create_database("web")
        schema.migrate_up(dsn)
        fill(dsn, tasks=args.tasks)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = ApiSettings(
            namespace=NAMESPACE,
            jwt_secret=SecretStr(SECRET),
            issuer=None,
            dapr_app_token=SecretStr(TOKEN),
            web_insecure_sign_in_as=USER,
        )
        with (
            apiserver.ApiServerThread(crds=crds.all_crds()) as cluster,
            DaprThread(app=App(url=url, token=TOKEN)) as dapr,
            OperatorThread(
                OperatorSettings(database_url=dsn, kube_api_url=cluster.url),
                relay_settings=RelaySettings(database_url=dsn, dapr_http_endpoint=dapr.url),
            ),
            RestApiThread(settings, database_url=dsn, kube_api_url=cluster.url, port=port),
            sync_playwright() as driver,
        ):
            kubeconfig = cluster.write_kubeconfig(pathlib.Path(folder) / "kubeconfig")
            browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            loads = first_loads(browser, url, args.loads)
            loads["api_json_p50_s"] = api_baseline(url, args.loads)
            loads["ratio_to_api_json"] = loads["load_p50_s"] / loads["api_json_p50_s"]
            live = live_updates(browser, url, kubeconfig, args.updates)
            live["ratio_p50_to_kubectl_patch"] = live["p50_s"] / live["kubectl_patch_p50_s"]
            browser.close()
    result = {"tasks": args.tasks, "first_load": loads, "live": live}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
