"""Prometheus metrics of the operator and the relay, on a registry of their own.

Two sources:

* **in-process** instruments for what only the running process sees:
  reconcile duration and errors, next-occurrence computation time, events
  published and publish errors, the scheduler's heartbeat;
* **the durable record**: counts such as reminders sent or tasks completed
  are read from PostgreSQL at scrape time (:class:`RecordCollector`), so
  what a short-lived ``notify`` Job or another replica did is counted too and
  nothing is lost with a pod. Every replica reports the same figures; the
  dashboards and alerts take ``max`` over them.

Names follow Prometheus' conventions: units in the name, ``_total`` on
counters (prometheus-client appends it), and label values from small fixed
sets (kind, topic, phase), never a user, a namespace or an object name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Final

import prometheus_client
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from todo_operator.telemetry.figures import Histogram, RecordSnapshot

logger = logging.getLogger(__name__)

KINDS: Final = ("Task", "RecurringTask", "Reminder")
# Why a reconcile failed: the spec is wrong (not retried), something was unavailable
# (retried after a delay), or anything else (Kopf's backoff).
ERROR_REASONS: Final = ("invalid_spec", "transient", "unexpected")

# Next-occurrence computation is microseconds (benchmarks/recurrence.py); a bomb would take milliseconds.
_COMPUTE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1)
_RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


def new_registry() -> CollectorRegistry:
    """A registry with the process' own figures (memory, CPU, open files) and Python's."""
    registry = CollectorRegistry()
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    return registry


# What a Dapr job's trigger came to: the e-mail sent or failed for good; nothing to do (sent
# already, being sent, not yet due); not a live reminder's job (answered 404).
JOB_TRIGGER_OUTCOMES = ("sent", "failed", "skipped", "not_ours")


class OperatorMetrics:
    """What the operator's handlers and scheduler measure while they run."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reconcile_duration = prometheus_client.Histogram(
            "todo_reconcile_duration_seconds",
            "Time one handler call took, by kind and action (reconcile or delete)",
            ["kind", "action"],
            buckets=_RECONCILE_BUCKETS,
            registry=registry,
        )
        self.reconcile_errors = prometheus_client.Counter(
            "todo_reconcile_errors",
            "Handler calls that failed, by kind and reason (invalid_spec, transient, unexpected)",
            ["kind", "reason"],
            registry=registry,
        )
        self.reconcile_conflicts = prometheus_client.Counter(
            "todo_reconcile_conflicts",
            "Series steps refused over a stale resourceVersion (two changes met) and decided again",
            ["kind"],
            registry=registry,
        )
        self.next_occurrence_duration = prometheus_client.Histogram(
            "todo_next_occurrence_duration_seconds",
            "Time to compute a schedule's next occurrence",
            buckets=_COMPUTE_BUCKETS,
            registry=registry,
        )
        self.scheduler_last_run = prometheus_client.Gauge(
            "todo_scheduler_last_run_timestamp_seconds",
            "When the scheduler (overdue tasks, due reminders, catch-up) last finished a pass",
            registry=registry,
        )
        self.job_triggers = prometheus_client.Counter(
            "todo_reminder_job_triggers",
            "Dapr job triggers answered (dapr-jobs delivery), by what came of them",
            ["outcome"],
            registry=registry,
        )
        self.asyncio_tasks = prometheus_client.Gauge(
            "todo_asyncio_tasks",
            "asyncio tasks alive in the operator's event loop (Kopf's workers and watchers, ours)",
            registry=registry,
        )
        self.asyncio_tasks.set_function(_asyncio_tasks)
        for kind in KINDS:  # every series exists from the start, so rate() and absent() behave
            for action in ("reconcile", "delete"):
                self.reconcile_duration.labels(kind, action)
            for reason in ERROR_REASONS:
                self.reconcile_errors.labels(kind, reason)
        self.reconcile_conflicts.labels("RecurringTask")
        for outcome in JOB_TRIGGER_OUTCOMES:
            self.job_triggers.labels(outcome)

    def time_next_occurrence[T](self, compute: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return compute()
        finally:
            self.next_occurrence_duration.observe(time.perf_counter() - started)


def _asyncio_tasks() -> float:
    # Collected by the /metrics handler, which runs in the operator's loop.
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # collected outside a running loop (a test's registry)
        return float("nan")


class RelayMetrics:
    """What an outbox relay measures: events published, publish errors, dead letters, publish time."""

    def __init__(self, registry: CollectorRegistry, *, topics: tuple[str, ...] = ()) -> None:
        self.registry = registry
        self.published = prometheus_client.Counter(
            "todo_events_published",
            "CloudEvents accepted by Dapr pub/sub, by topic",
            ["topic"],
            registry=registry,
        )
        self.publish_errors = prometheus_client.Counter(
            "todo_event_publish_errors",
            "Publish attempts that failed, by topic and reason (rejected, unavailable)",
            ["topic", "reason"],
            registry=registry,
        )
        self.dead_lettered = prometheus_client.Counter(
            "todo_events_dead_lettered",
            "Events moved to the dead letters after too many failed attempts, by topic",
            ["topic"],
            registry=registry,
        )
        self.publish_duration = prometheus_client.Histogram(
            "todo_event_publish_duration_seconds",
            "Time of one call to the Dapr publish API (single or bulk)",
            buckets=_PUBLISH_BUCKETS,
            registry=registry,
        )
        for topic in topics:
            self.published.labels(topic)
            self.dead_lettered.labels(topic)
            for reason in ("rejected", "unavailable"):
                self.publish_errors.labels(topic, reason)


class ApiMetrics:
    """The REST API's requests, by route template (never the raw path: it holds names and ids)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = prometheus_client.Counter(
            "todo_api_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = prometheus_client.Histogram(
            "todo_api_request_duration_seconds",
            "Time to answer a request, by method and route template",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )


def _histogram_buckets(histogram: Histogram) -> list[tuple[str, float]]:
    bounds = [(_go_float(bound), float(count)) for bound, count in histogram.buckets]
    return [*bounds, ("+Inf", float(histogram.count))]


def _go_float(bound: float) -> str:
    # The "le" label as the client library writes it for its own histograms.
    return str(prometheus_client.utils.floatToGoString(bound))  # type: ignore[no-untyped-call]


Snapshotter = Callable[[datetime], Awaitable[RecordSnapshot]]


class RecordCollector(Collector):
    """Metrics read from PostgreSQL (see the module docstring).

    ``collect`` is called by prometheus-client synchronously, so it reports the
    last snapshot; the ``/metrics`` handler calls :meth:`refresh` first, at most
    once every ``max_age`` seconds, so scrapes are fresh and cost PostgreSQL
    one query at most every ``max_age`` seconds however many scrapers there are.
    """

    def __init__(
        self,
        *,
        snapshot: Snapshotter,
        now: Callable[[], datetime],
        max_age: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        self._snapshot = snapshot
        self._now = now
        self._max_age = max_age
        # While PostgreSQL is down the pool waits 30 s for a connection; a scrape must answer
        # well within Prometheus' scrape timeout (10 s by default), or the operator looks down (F21).
        self._timeout = timeout
        self._last: RecordSnapshot | None = None
        self._taken_at = float("-inf")
        self._errors = 0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._taken_at < self._max_age:
                return
            try:
                self._last = await asyncio.wait_for(self._snapshot(self._now()), self._timeout)
            except Exception as error:  # a scrape must answer; the error is counted and logged
                self._errors += 1
                logger.warning("metrics: cannot read the record from PostgreSQL: %s", error)
                return
            self._taken_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "todo_record_read_errors",
            "Scrapes that could not read the record from PostgreSQL (figures below are then stale)",
            value=self._errors,
        )
        if self._last is None:
            return
        yield from _record_metrics(self._last)


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _record_metrics(record: RecordSnapshot) -> Iterator[Metric]:
    yield from _task_metrics(record)
    yield from _reminder_metrics(record)
    yield from _outbox_metrics(record)


def _task_metrics(record: RecordSnapshot) -> Iterator[Metric]:
    yield _gauge("todo_tasks_open", "Tasks open and not yet due", record.tasks_open)
    yield _gauge("todo_tasks_overdue", "Tasks past their due time and not completed", record.tasks_overdue)
    completed = CounterMetricFamily(
        "todo_tasks_completed",
        "Tasks completed, one-off or occurrences of a recurring task",
        labels=["recurring"],
    )
    completed.add_metric(["false"], record.tasks_completed)
    completed.add_metric(["true"], record.occurrences_completed)
    yield completed
    yield _counter(
        "todo_occurrences_spawned", "Occurrences created by recurring tasks", record.occurrences_spawned
    )
    yield _counter(
        "todo_occurrences_skipped",
        "Occurrences skipped: the series moved past them without a completion",
        record.occurrences_skipped,
    )
    yield _counter(
        "todo_recurring_tasks_created", "Recurring tasks ever created", record.recurring_tasks_created
    )
    recurring = GaugeMetricFamily("todo_recurring_tasks", "Recurring tasks by phase", labels=["phase"])
    for phase, count in record.recurring_tasks.items():
        recurring.add_metric([phase], count)
    yield recurring
    next_due = GaugeHistogramMetricFamily(
        "todo_recurring_task_next_due_seconds",
        "How far ahead active recurring tasks' next occurrences lie",
        buckets=_histogram_buckets(record.next_due),
        gsum_value=record.next_due.sum,
    )
    yield next_due


def _reminder_metrics(record: RecordSnapshot) -> Iterator[Metric]:
    yield _counter("todo_reminders_scheduled", "Reminders ever scheduled", record.reminders_scheduled)
    yield _gauge("todo_reminders_pending", "Reminders waiting to fire", record.reminders_pending)
    sent = CounterMetricFamily(
        "todo_reminders_sent", "Reminder e-mails sent, on time or late (caught up)", labels=["timing"]
    )
    sent.add_metric(["on_time"], record.reminders_sent_on_time)
    sent.add_metric(["late"], record.reminders_sent_late)
    yield sent
    yield _counter("todo_reminders_failed", "Reminders that could not be sent", record.reminders_failed)
    yield _counter(
        "todo_reminders_missed",
        "Reminders not sent because they were found too late",
        record.reminders_missed,
    )
    yield _counter(
        "todo_reminders_cancelled",
        "Reminders cancelled (task completed or deleted)",
        record.reminders_cancelled,
    )
    yield HistogramMetricFamily(
        "todo_reminder_delivery_lag_seconds",
        "Time from a reminder's fire time to its e-mail being sent",
        buckets=_histogram_buckets(record.delivery_lag),
        sum_value=record.delivery_lag.sum,
    )


def _outbox_metrics(record: RecordSnapshot) -> Iterator[Metric]:
    yield _gauge("todo_outbox_pending_events", "Events recorded and not yet published", record.outbox_pending)
    yield _gauge(
        "todo_outbox_oldest_pending_age_seconds",
        "Age of the oldest unpublished event (the consumers' lag behind the record)",
        record.outbox_oldest_pending_age_seconds,
    )
    dead = GaugeMetricFamily("todo_dead_letters", "Dead letters waiting for an admin", labels=["kind"])
    dead.add_metric(["event"], record.dead_letters_events)
    dead.add_metric(["reminder"], record.dead_letters_reminders)
    yield dead


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
