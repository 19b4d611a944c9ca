"""
Session fixtures: the catalogue of our metrics, built from the code's own instruments,
and the chart rendered once with the Grafana dashboards on and once with its defaults.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client.registry import CollectorRegistry

from tests.manifests import rendering
from tests.observability import promql
from todo_operator.store import stats
from todo_operator.telemetry import figures, metrics


def _empty_histogram(bounds: tuple[float, ...]) -> figures.Histogram:
    return figures.Histogram(buckets=tuple((bound, 0) for bound in bounds), count=0, sum=0.0)


def zero_snapshot() -> figures.RecordSnapshot:
    """The durable record's figures, all zero (the names and labels are what matter here)."""
    return figures.RecordSnapshot(
        tasks_open=0,
        tasks_overdue=0,
        tasks_completed=0,
        occurrences_completed=0,
        occurrences_skipped=0,
        occurrences_spawned=0,
        recurring_tasks_created=0,
        recurring_tasks=dict.fromkeys(stats.RECURRING_PHASES, 0),
        next_due=_empty_histogram(stats.NEXT_DUE_BUCKETS),
        reminders_scheduled=0,
        reminders_pending=0,
        reminders_sent_on_time=0,
        reminders_sent_late=0,
        reminders_failed=0,
        reminders_missed=0,
        reminders_cancelled=0,
        delivery_lag=_empty_histogram(stats.LAG_BUCKETS),
        outbox_pending=0,
        outbox_oldest_pending_age_seconds=0.0,
        dead_letters_events=0,
        dead_letters_reminders=0,
    )


def build_registry() -> CollectorRegistry:
    """Every metric the operator, the relay and the API export, on one registry."""
    registry = metrics.new_registry()
    metrics.OperatorMetrics(registry)
    metrics.RelayMetrics(registry, topics=("task-events",))
    api = metrics.ApiMetrics(registry)
    # The API's families have labels and no series until a request is measured: measure one.
    api.requests.labels("GET", "/api/v1/tasks", "200").inc()
    api.latency.labels("GET", "/api/v1/tasks").observe(0.01)

    async def snapshot(now: datetime) -> figures.RecordSnapshot:
        return zero_snapshot()

    collector = metrics.RecordCollector(snapshot=snapshot, now=lambda: datetime.now(UTC))
    asyncio.run(collector.refresh())
    registry.register(collector)
    return registry


@pytest.fixture(scope="session")
def registry() -> CollectorRegistry:
    return build_registry()


@pytest.fixture(scope="session")
def catalogue(registry: CollectorRegistry) -> promql.Catalogue:
    return promql.Catalogue.from_registry(registry)


@pytest.fixture(scope="session")
def chart_renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[rendering.Json]]:
    """The chart with its defaults, with the dashboards on, with the relay on its own (one child process)."""
    defaults = rendering.load_values(rendering.CHART / "values.yaml")
    with_dashboards = rendering.load_values(rendering.CHART / "values.yaml")
    with_dashboards["grafana"]["dashboards"] |= {"enabled": True, "annotations": {"grafana_folder": "todo"}}
    with_relay = rendering.load_values(rendering.CHART / "values.yaml")
    with_relay["relay"]["enabled"] = True
    results = rendering.render_charts(
        {"defaults": defaults, "dashboards": with_dashboards, "relay": with_relay},
        workdir=tmp_path_factory.mktemp("chart"),
    )
    renders = {}
    for name, result in results.items():
        if isinstance(result, str):
            pytest.fail(f"the chart did not render ({name}): {result}")
        renders[name] = result
    return renders
