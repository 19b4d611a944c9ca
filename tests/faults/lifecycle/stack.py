"""Two running operators for the lifecycle faults (F7, F8, F12, F13, F14, F17), each with all its real parts.

Every fault here is about time, deletion or retries *through the running
operator*, so each stack is the whole thing: the API emulator over HTTP, its
own PostgreSQL database, an aiosmtpd sink, the Dapr double and the operator
in its own thread with a :class:`ManualClock` the tests move, serving
``/metrics``.

Two stacks because reminder delivery is an operator-wide setting:

* ``inline_stack`` sends reminders itself (the e-mail path: F7, F12, F13 in
  flight). Its SMTP retries are short and few (3 attempts, 0.5 s then 1 s) so
  that a whole retry sequence fits in a test;
* ``cronjob_stack`` makes one CronJob per reminder, the default (F13's
  finalizer, F14's cascade, and the schedule faults F8 and F17).

Both live for the package (starting and stopping a stack costs seconds); tests are isolated
by namespace and compare metrics before and after. Each stack's clock starts
at real time because the emulator stamps ``creationTimestamp`` with real time
(a RecurringTask's first occurrence is counted from it). A test that moves a
clock backwards puts it forward again (``restore_clock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pathlib
import threading
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal

import httpx2 as httpx
import kmock
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import dict_row

import kube_emulator as apiserver
from tests.kubeclient import KubeClient
from tests.stacks import operator_settings
from todo_devstack import postgres
from todo_devstack.dapr import DaprThread
from todo_devstack.operator_thread import OperatorThread
from todo_devstack.smtp import SmtpSink
from todo_operator.clock import ManualClock
from todo_operator.domain import crds, resources
from todo_operator.events.relay import RelaySettings
from todo_operator.telemetry.settings import TelemetrySettings

Json = dict[str, Any]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# Reminder retries of the inline stack: 1 attempt + 2 retries, waiting 0.5 s then 1 s.
REMINDER_RETRIES = 2
MAX_ATTEMPTS = REMINDER_RETRIES + 1
WAIT = 30.0  # seconds: generous, the machine is shared; every wait polls and returns early


class CountingSmtpSink(SmtpSink):
    """The devstack SMTP sink that also counts every DATA it is offered and can hold one open.

    Counting refused attempts is what shows the retry layers' total (F12): the
    plain sink only keeps what it accepted. Holding a DATA open (before its
    reply) is what puts a send "in flight" for as long as a test needs (F13).
    ``_accept`` is the sink's one hook for a DATA; overriding it is the smallest
    way in (subclass, don't fork).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.attempts = 0
        self._holding = False
        self.reached = threading.Event()
        self._release = threading.Event()

    def _accept(self, envelope: Any) -> str:
        self.attempts += 1  # aiosmtpd serves DATA in its one loop thread: no race on the count
        if self._holding:
            self._holding = False
            self.reached.set()
            # Blocks the sink's loop thread, so the sender waits for its reply: in flight.
            self._release.wait(timeout=WAIT)
        return super()._accept(envelope)

    def hold_next(self) -> None:
        """Hold the next DATA without a reply until :meth:`release`."""
        self.reached.clear()
        self._release.clear()
        self._holding = True

    def release(self, *, reply: str | None = None) -> None:
        """Answer the held DATA: accepted, or with ``reply`` (e.g. a 4xx)."""
        if reply is not None:
            self.fail_next(reply)
        self._release.set()

    def forget_failures(self) -> None:
        """Drop replies queued by :meth:`fail_next` that no DATA used (the sink outlives a test)."""
        with self._lock:
            self._failures.clear()

    def for_reminder(self, uid: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["X-Todo-Reminder"] == uid]


@dataclass
class Stack:
    """One running operator with its real parts, and the ways a test looks at them."""

    delivery: Literal["inline", "cronjob"]
    api: apiserver.ApiServerThread
    kube: KubeClient
    clock: ManualClock
    smtp: CountingSmtpSink
    dapr: DaprThread
    database_url: str
    metrics_url: str
    _namespaces: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _latest: datetime = field(init=False)

    def __post_init__(self) -> None:
        self._latest = self.clock.now()
        self.clock.on_change(self._remember_latest)

    def _remember_latest(self) -> None:
        self._latest = max(self._latest, self.clock.now())

    def new_namespace(self, hint: str) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in hint.lower()).strip("-")
        name = f"{self.delivery[:4]}{next(self._namespaces)}-{slug}"[:50].rstrip("-")
        self.kube.create_namespace(name)
        return name

    def rows(self, query: str, *args: Any) -> list[Json]:
        with psycopg.connect(self.database_url, row_factory=dict_row) as connection:
            return connection.execute(query, args).fetchall()

    def objects(self, resource: str, namespace: str) -> list[Json]:
        """Stored objects: ``tasks`` etc. for ours, ``batch/v1/cronjobs`` for built-in ones."""
        if "/" not in resource:
            resource = f"{resources.API_VERSION}/{resource}"
        return self.api.objects(resource, namespace)

    def scrape(self) -> Samples:
        response = httpx.get(self.metrics_url, timeout=10)
        assert response.status_code == 200, response.text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def wait(self, what: str, probe: Callable[[], Any], *, timeout: float = WAIT) -> Any:
        """Poll ``probe`` until it returns something truthy (and return that); fail naming ``what``."""
        return self.kube.wait_for(what, probe, timeout=timeout)

    def wait_status(
        self, plural: str, namespace: str, name: str, predicate: Callable[[Json], bool], what: str
    ) -> Json:
        return self.kube.wait_for_status(plural, namespace, name, predicate, what=what, timeout=WAIT)

    @contextlib.contextmanager
    def restore_clock(self) -> Iterator[datetime]:
        """Yield the clock's instant; afterwards set it to the latest instant it ever showed.

        Other tests of the stack then see time that only went forward.
        """
        try:
            yield self.clock.now()
        finally:
            self.clock.set(self._latest)


def metric(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextlib.contextmanager
def running_stack(
    delivery: Literal["inline", "cronjob"], *, database_url: str, mail_folder: pathlib.Path
) -> Iterator[Stack]:
    clock = ManualClock(datetime.now(tz=UTC).replace(microsecond=0))
    metrics_port = postgres.free_port()
    with (
        apiserver.ApiServerThread(crds=crds.all_crds()) as api,
        CountingSmtpSink(folder=mail_folder) as sink,
        DaprThread() as dapr,
    ):
        settings = operator_settings(
            database_url=database_url,
            api_url=api.url,
            reminder_delivery=delivery,
            smtp_port=sink.port,
            reminder_retries=REMINDER_RETRIES,
            reminder_retry_first_seconds=0.5,
            reminder_retry_cap_seconds=1.0,
        )
        relay = RelaySettings(database_url=database_url, dapr_http_endpoint=dapr.url)
        telemetry = TelemetrySettings(
            metrics_host="127.0.0.1", metrics_port=metrics_port, metrics_max_age_seconds=0
        )
        with OperatorThread(settings, clock=clock, relay_settings=relay, telemetry=telemetry):
            kube = KubeClient(api.url)
            try:
                yield Stack(
                    delivery=delivery,
                    api=api,
                    kube=kube,
                    clock=clock,
                    smtp=typing.cast(CountingSmtpSink, sink),  # SmtpSink.__enter__ returns itself
                    dapr=dapr,
                    database_url=database_url,
                    metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
                )
            finally:
                kube.close()


OWNER = "alice@example.com"


def task(name: str, *, due_at: datetime | None, reminders: list[Json] | None = None) -> Json:
    spec: Json = {"title": name.title(), "owner": OWNER, "reminders": reminders or []}
    if due_at is not None:
        spec["dueAt"] = due_at.isoformat()
    return {"metadata": {"name": name}, "spec": spec}


def recurring_task(name: str, *, schedule: Json, reminders: list[Json] | None = None) -> Json:
    template: Json = {"title": name.title(), "owner": OWNER, "reminders": reminders or []}
    return {"metadata": {"name": name}, "spec": {"schedule": schedule, "taskTemplate": template}}


def reminder_name(task_name: str, at: datetime) -> str:
    """The Reminder a Task's ``{"at": ...}`` entry makes (``todo_operator.domain.timing``)."""
    return f"{task_name}-at-{at.astimezone(UTC):%Y%m%dt%H%M}"


def at(instant: datetime) -> Json:
    return {"at": instant.isoformat()}


def scheduler_pass(stack: Stack, instant: datetime) -> None:
    """Wait until the scheduler finished a whole pass that saw the clock at ``instant``.

    Its heartbeat metric carries the "now" of the last complete pass; after a
    jump this is the proof that due work was looked at with the new time.
    """
    stack.wait(
        f"a scheduler pass at {instant.isoformat()}",
        lambda: metric(stack.scrape(), "todo_scheduler_last_run_timestamp_seconds") == instant.timestamp(),
    )


@dataclass
class InjectedFaults:
    """API requests answered with an error by the emulator instead of being served."""

    times: int
    served: int = 0


def fail_requests(
    stack: Stack,
    *,
    method: kmock.method,
    plural: str,
    namespace: str,
    subresource: str | None = None,
    group_version: tuple[str, str] = (resources.GROUP, resources.VERSION),
    times: int,
    status: int = 500,
) -> InjectedFaults:
    """Answer the next ``times`` matching requests in ``namespace`` with ``status``, then serve them again."""
    faults = InjectedFaults(times=times)

    def react(request: kmock.Request) -> kmock.KubernetesError:
        if faults.served >= faults.times:
            raise kmock.ReactionMismatchError  # depleted: kmock disables the reaction for good
        faults.served += 1
        return kmock.KubernetesError(
            status=status, reason="InternalError", message="injected by a fault test"
        )

    def install(emulator: apiserver.Emulator) -> object:
        resource = kmock.resource(*group_version, plural)
        return emulator[method, resource, kmock.namespace(namespace), kmock.subresource(subresource)] << react

    stack.api.inject(install)
    return faults


def wait_gone(stack: Stack, resource: str, namespace: str) -> None:
    stack.wait(f"no {resource} left in {namespace}", lambda: not stack.objects(resource, namespace))


def lock_waiters(stack: Stack, statement_prefix: str) -> int:
    """How many sessions of the stack's database wait for a row lock, running a statement like this."""
    rows = stack.rows(
        "SELECT count(*) AS waiting FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE %s",
        statement_prefix + "%",
    )
    waiting: int = rows[0]["waiting"]
    return waiting


@dataclass
class HeldRequests:
    """Requests the emulator holds unanswered until :meth:`release` (then serves them as usual)."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    held: int = 0
    served: int = 0  # held ones that went on to the emulator

    def release(self) -> None:
        self.released.set()


def hold_requests(
    stack: Stack, *, method: kmock.method, plural: str, namespace: str, when: Callable[[Any], bool]
) -> HeldRequests:
    """Hold the requests in ``namespace`` whose body satisfies ``when``: a slow API call, in flight."""
    held = HeldRequests()

    async def stall(request: kmock.Request) -> None:
        if held.released.is_set() or not when(request.data):
            # kmock's "matched, nothing to say": the emulator serves it and the reaction stays armed.
            raise NotImplementedError
        held.held += 1
        held.reached.set()
        await asyncio.to_thread(held.released.wait, WAIT)  # released from the test's thread
        held.served += 1
        raise NotImplementedError  # now serve it, late

    def install(emulator: apiserver.Emulator) -> object:
        resource = kmock.resource(resources.GROUP, resources.VERSION, plural)
        return emulator[method, resource, kmock.namespace(namespace)] << stall

    stack.api.inject(install)
    return held
