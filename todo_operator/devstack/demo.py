"""``todo-operator demo``: the system on one machine, no cluster, no Docker.

Starts, on loopback: the Kubernetes API emulator with our CRDs, a throw-away
PostgreSQL (migrated), an SMTP sink that saves each e-mail as an ``.eml``
file, a Dapr publish endpoint that logs every CloudEvent the outbox relay
sends, and the operator with inline reminder delivery; writes a kubeconfig
into the state directory and prints what to type next. Ctrl-C stops
everything and leaves no process behind. The REST API joins here next.
"""

from __future__ import annotations

import pathlib
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import yaml

from todo_operator.devstack import apiserver, postgres
from todo_operator.devstack.dapr import DaprDouble, DaprThread
from todo_operator.devstack.operator_thread import OperatorThread
from todo_operator.devstack.smtp import SmtpSink
from todo_operator.domain import crds, resources
from todo_operator.events.relay import RelaySettings
from todo_operator.operator.settings import OperatorSettings
from todo_operator.store import schema


def _log_events(double: DaprDouble) -> None:
    double.log_events = True


EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _example_documents(folder: pathlib.Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield document


def apply_examples(api_url: str, *, namespace: str = "default", folder: pathlib.Path = EXAMPLES) -> list[str]:
    """Create every object in ``examples/``; return ``kind/name`` of each."""
    created = []
    plurals = {kind.kind: kind.plural for kind in crds.KINDS}
    with httpx.Client(base_url=api_url, timeout=10) as client:
        for document in _example_documents(folder):
            plural = plurals[document["kind"]]
            response = client.post(
                f"/apis/{resources.API_VERSION}/namespaces/{namespace}/{plural}", json=document
            )
            if response.status_code >= 400:
                raise RuntimeError(
                    f"examples: {document['metadata']['name']}: {response.json().get('message')}"
                )
            created.append(f"{document['kind'].lower()}/{document['metadata']['name']}")
    return created


def next_steps(*, kubeconfig: pathlib.Path, database_url: str) -> str:
    return "\n".join(
        [
            "todo-operator demo is running. In another terminal:",
            "",
            f"  export KUBECONFIG={kubeconfig}",
            "  kubectl apply -f examples/recurring-tasks.yaml",
            "  kubectl get todos",
            "  kubectl get rtask weekly-review",
            "  kubectl patch todo $(kubectl get rtask weekly-review -o jsonpath='{.status.currentTask}') \\",
            '      --type merge -p \'{"spec":{"completed":true}}\'',
            "  kubectl describe rtask weekly-review",
            "",
            f"  psql {database_url} -c 'SELECT event_type, subject FROM outbox ORDER BY id'",
            "",
            "Press Ctrl-C to stop.",
        ]
    )


def run(
    *,
    state_dir: pathlib.Path,
    port_base: int,
    with_examples: bool,
    say: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Run until ``stop`` is set or SIGINT/SIGTERM arrives."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    state_dir = state_dir.resolve()
    shutil.rmtree(state_dir / "postgres", ignore_errors=True)  # throw-away: a fresh database each run
    state_dir.mkdir(parents=True, exist_ok=True)

    with (
        apiserver.ApiServerThread(crds=crds.all_crds(), port=port_base) as api,
        postgres.ThrowawayPostgres(base_dir=state_dir / "postgres", port=port_base + 1) as database,
        SmtpSink(folder=state_dir / "mail", port=port_base + 2) as smtp,
        DaprThread(port=port_base + 3) as dapr,
    ):
        database_url = database.create_database("todo")
        schema.migrate_up(database_url)
        kubeconfig = api.write_kubeconfig(state_dir / "kubeconfig")
        settings = OperatorSettings(
            database_url=database_url,
            kube_api_url=api.url,
            # No CronJob controller here: the operator sends reminders itself, into the sink.
            reminder_delivery="inline",
            smtp_port=smtp.port,
            smtp_sender="todo-operator@demo.local",
        )
        # The relay publishes every recorded change to the Dapr double, which logs each CloudEvent.
        dapr.call(_log_events)
        publishing = RelaySettings(database_url=database_url, dapr_http_endpoint=dapr.url)
        with OperatorThread(settings, relay_settings=publishing):
            say(f"API server  {api.url}")
            say(f"PostgreSQL  {database_url}")
            say(f"SMTP sink   127.0.0.1:{smtp.port}, e-mails saved in {state_dir / 'mail'}")
            say(f"Dapr        {dapr.url} (publish API; each CloudEvent is logged)")
            if with_examples:
                for created in apply_examples(api.url):
                    say(f"applied     {created}")
            say("")
            say(next_steps(kubeconfig=kubeconfig, database_url=database_url))
            stop.wait()
            say("stopping ...")
