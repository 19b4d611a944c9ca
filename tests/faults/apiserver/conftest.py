"""A whole stack per test, to break on purpose: the API emulator, PostgreSQL, the
operator (one or two replicas, each in its own thread), the SMTP sink and the
Dapr double.

Each fault test gets its own emulator and database, because the faults are
global to them (an outage refuses everyone; a restart of PostgreSQL cuts
every connection). Starting and stopping an idle operator takes a fraction
of a second here, so nothing is shared between tests. Reminders are sent
inline by the operator, so e-mails are part of the record; the clock is a
:class:`ManualClock` that the tests move.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx2 as httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

import kube_emulator as apiserver
from kube_emulator import faults
from tests.faults.record import Sources
from tests.kubeclient import KubeClient
from tests.stacks import operator_settings
from todo_devstack import postgres
from todo_devstack.dapr import DaprThread
from todo_devstack.operator_thread import OperatorThread
from todo_devstack.smtp import SmtpSink
from todo_operator.clock import ManualClock
from todo_operator.domain import crds, resources
from todo_operator.events.relay import RelaySettings
from todo_operator.operator.settings import OperatorSettings
from todo_operator.telemetry.settings import TelemetrySettings

T = TypeVar("T")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
NAMESPACE = "faults"
OWNER = "alice@example.com"


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@dataclass
class Stack:
    """The running parts of one test, and what the tests do with them (arm faults, wait, read)."""

    api: apiserver.ApiServerThread
    kube: KubeClient
    clock: ManualClock
    smtp: SmtpSink
    dapr: DaprThread
    database_url: str
    settings: OperatorSettings
    operators: list[OperatorThread] = field(default_factory=list)
    metrics_urls: list[str] = field(default_factory=list)
    shutdown: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # stops the operators

    @property
    def sources(self) -> Sources:
        return Sources(api=self.api, database_url=self.database_url, dapr=self.dapr, smtp=self.smtp)

    def faults(self, arm: Callable[[faults.Faults], T]) -> T:
        """Arm (or read) the emulator's faults, in its own event loop."""
        return self.api.inject(lambda emulator: arm(emulator.faults))

    def start_operator(self, **overrides: Any) -> OperatorThread:
        """One more replica of the operator, with its own /metrics endpoint."""
        settings = self.settings.model_copy(update=overrides)
        port = postgres.free_port()
        relay = RelaySettings(
            database_url=settings.database_url,
            dapr_http_endpoint=self.dapr.url,
            # A database or sidecar outage is waited out with a capped backoff; capped low here.
            relay_backoff_cap_seconds=1.0,
        )
        telemetry = TelemetrySettings(metrics_host="127.0.0.1", metrics_port=port, metrics_max_age_seconds=0)
        operator = OperatorThread(settings, clock=self.clock, relay_settings=relay, telemetry=telemetry)
        self.shutdown.enter_context(operator)
        self.operators.append(operator)
        self.metrics_urls.append(f"http://127.0.0.1:{port}/metrics")
        return operator

    def metric(self, name: str, **labels: str) -> float:
        """A counter summed over the replicas (each counts what it did)."""
        key = (name, frozenset(labels.items()))
        return sum(scrape(url).get(key, 0.0) for url in self.metrics_urls)

    def transient_errors(self, kind: str) -> float:
        return self.metric("todo_reconcile_errors_total", kind=kind, reason="transient")

    def retries(self) -> float:
        """Handler calls retried by Kopf, plus series steps decided again at once after a 409."""
        return (
            self.transient_errors("RecurringTask")
            + self.transient_errors("Task")
            + self.metric("todo_reconcile_conflicts_total", kind="RecurringTask")
        )

    def create_recurring_task(self, name: str, **template: Any) -> dict[str, Any]:
        return self.kube.create("recurringtasks", NAMESPACE, recurring_task(name, **template))

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        """An object as stored, read in the emulator's process: the faults armed for clients
        (the operator) must not hit the test's own observations."""
        found = [
            obj
            for obj in self.api.objects(f"{resources.API_VERSION}/{plural}", NAMESPACE)
            if obj["metadata"]["name"] == name
        ]
        return found[0] if found else None

    def wait_for(self, what: str, probe: Callable[[], T | None], *, timeout: float = 30.0) -> T:
        """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        last = probe()
        while not last:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")
            time.sleep(0.05)
            last = probe()
        return last

    def wait_occurrence(self, name: str, occurrences: int, *, timeout: float = 30.0) -> dict[str, Any]:
        """The RecurringTask once its status shows occurrence number ``occurrences``, Ready."""

        def probe() -> dict[str, Any] | None:
            body = self.get("recurringtasks", name)
            status = (body or {}).get("status") or {}
            return body if status.get("occurrences") == occurrences and ready(status) else None

        return self.wait_for(f"{name}: occurrence {occurrences}", probe, timeout=timeout)

    def wait_reminders_pending(self, recurring_task: str) -> list[str]:
        """The reminders of a RecurringTask's current occurrence, once each waits to be sent."""
        task = self.wait_occurrence(recurring_task, 1)["status"]["currentTask"]

        def pending() -> list[str]:
            reminders = [
                reminder
                for reminder in self.api.objects(f"{resources.API_VERSION}/reminders", NAMESPACE)
                if reminder["spec"]["taskRef"]["name"] == task
            ]
            phases = [(reminder.get("status") or {}).get("phase") for reminder in reminders]
            if reminders and all(phase == "Pending" for phase in phases):
                return [reminder["metadata"]["name"] for reminder in reminders]
            return []

        return self.wait_for(f"the reminders of {task} pending", pending)

    def wait_published(self) -> None:
        """Until the outbox has nothing left to publish (the relays are idle)."""

        def drained() -> bool:
            with psycopg.connect(self.database_url, autocommit=True) as connection:
                row = connection.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
            return row is not None and row[0] == 0

        self.wait_for("the outbox published", drained)

    def complete(self, task: str) -> None:
        self.kube.patch("tasks", NAMESPACE, task, {"spec": {"completed": True}})


def ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def tomorrow_at_nine() -> datetime:
    return (datetime.now(tz=UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def recurring_task(name: str, *, reminders: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A daily RecurringTask from tomorrow 09:00 UTC (occurrences due then, then a day later ...)."""
    template: dict[str, Any] = {"title": f"Chore {name}", "owner": OWNER}
    if reminders:
        template["reminders"] = reminders
    return {
        "apiVersion": resources.API_VERSION,
        "kind": "RecurringTask",
        "metadata": {"name": name},
        "spec": {
            "schedule": {"every": "daily", "start": tomorrow_at_nine().strftime("%Y-%m-%dT%H:%M:%S")},
            "taskTemplate": template,
        },
    }


@contextlib.contextmanager
def running_stack(database_url: str, *, replicas: int = 1, **overrides: Any) -> Iterator[Stack]:
    """The parts, started; ``replicas`` operators against them (more with ``start_operator``)."""
    clock = ManualClock(datetime.now(tz=UTC).replace(microsecond=0))
    with (
        apiserver.ApiServerThread(crds=crds.all_crds()) as api,
        SmtpSink() as smtp,
        DaprThread() as dapr,
    ):
        settings = operator_settings(
            database_url=database_url, api_url=api.url, smtp_port=smtp.port, **overrides
        )
        kube = KubeClient(api.url)
        stack = Stack(
            api=api,
            kube=kube,
            clock=clock,
            smtp=smtp,
            dapr=dapr,
            database_url=database_url,
            settings=settings,
        )
        with stack.shutdown:
            kube.create_namespace(NAMESPACE)
            for _ in range(replicas):
                stack.start_operator()
            yield stack
        kube.close()


@pytest.fixture
def stack(database_url: str) -> Iterator[Stack]:
    with running_stack(database_url) as running:
        yield running
