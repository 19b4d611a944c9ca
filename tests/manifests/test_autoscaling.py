"""Autoscaling (docs/DEPLOYMENT.md, "Autoscaling"): KEDA scales the relay on the outbox backlog,
a HorizontalPodAutoscaler the API on its CPU. Rendered with ci/autoscaling-values.yaml; the
backlog query KEDA runs is run against a migrated PostgreSQL, so a wrong table or column fails."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.manifests import checks, conftest, rendering
from todo_operator.store.outbox import OutboxStore

SCENARIO = "ci/autoscaling-values.yaml"
VALUES = rendering.load_values(conftest.CHART / "values.yaml", conftest.CHART / SCENARIO)
KEDA_KINDS = ("ScaledObject", "TriggerAuthentication")
AUTOSCALER_KINDS = ("HorizontalPodAutoscaler", *KEDA_KINDS)


@pytest.fixture(scope="module")
def objects(chart_renders: dict[str, list[rendering.Json]]) -> list[rendering.Json]:
    return chart_renders[SCENARIO]


def _one(objects: list[rendering.Json], kind: str, component: str) -> rendering.Json:
    (found,) = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def _backlog_query(objects: list[rendering.Json]) -> str:
    (trigger,) = _one(objects, "ScaledObject", "relay")["spec"]["triggers"]
    query: str = trigger["metadata"]["query"]
    return query


def _target(deployment: rendering.Json) -> rendering.Json:
    """A scaleTargetRef that names this Deployment."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}


def test_autoscaling_is_off_by_default(chart_renders: dict[str, list[rendering.Json]]) -> None:
    for name, rendered in chart_renders.items():
        if name != SCENARIO:
            assert not [o for o in rendered if o["kind"] in AUTOSCALER_KINDS], name
    # The relay without autoscaling keeps its fixed count (ci/full-values.yaml turns it on).
    assert _one(chart_renders["ci/full-values.yaml"], "Deployment", "relay")["spec"]["replicas"] == 2
    assert _one(chart_renders["defaults"], "Deployment", "api")["spec"]["replicas"] == 2


def test_each_autoscaler_targets_its_deployment(objects: list[rendering.Json]) -> None:
    relay = _one(objects, "Deployment", "relay")
    api = _one(objects, "Deployment", "api")
    assert _one(objects, "ScaledObject", "relay")["spec"]["scaleTargetRef"] == _target(relay)
    assert _one(objects, "HorizontalPodAutoscaler", "api")["spec"]["scaleTargetRef"] == _target(api)


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(objects: list[rendering.Json]) -> None:
    """A replicas field would put the count back to relay.replicas/api.replicas on every upgrade."""
    for component in ("relay", "api"):
        assert "replicas" not in _one(objects, "Deployment", component)["spec"], component
    assert _one(objects, "Deployment", "operator")["spec"]["replicas"] == 1


def test_the_relay_scales_on_its_values(objects: list[rendering.Json]) -> None:
    wanted = VALUES["relay"]["autoscaling"]
    spec = _one(objects, "ScaledObject", "relay")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        wanted["minReplicas"],
        wanted["maxReplicas"],
    )
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (
        wanted["pollingInterval"],
        wanted["cooldownPeriod"],
    )
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "postgresql"
    # KEDA's trigger metadata is a map of strings; AverageValue (the default): rows per replica.
    assert trigger["metadata"]["targetQueryValue"] == str(wanted["backlogPerReplica"])
    assert "metricType" not in trigger


def test_the_backlog_query_is_the_outbox_pending_count(objects: list[rendering.Json]) -> None:
    """The figure todo_outbox_pending_events shows (store/stats.py), so a dashboard shows what KEDA sees."""
    assert _backlog_query(objects) == "SELECT count(*) FROM outbox WHERE published_at IS NULL"


def test_keda_reads_the_dsn_the_relay_uses(objects: list[rendering.Json]) -> None:
    (trigger,) = _one(objects, "ScaledObject", "relay")["spec"]["triggers"]
    authentication = _one(objects, "TriggerAuthentication", "relay")
    assert trigger["authenticationRef"] == {
        "kind": "TriggerAuthentication",
        "name": authentication["metadata"]["name"],
    }
    (container,) = _one(objects, "Deployment", "relay")["spec"]["template"]["spec"]["containers"]
    (dsn,) = [variable for variable in container["env"] if variable["name"] == "TODO_DATABASE_URL"]
    # `connection`: the postgresql scaler's parameter for a whole connection string (KEDA's docs).
    assert authentication["spec"]["secretTargetRef"] == [
        {"parameter": "connection", **dsn["valueFrom"]["secretKeyRef"]}
    ]


def test_the_api_scales_on_its_containers_cpu(objects: list[rendering.Json]) -> None:
    wanted = VALUES["api"]["autoscaling"]
    spec = _one(objects, "HorizontalPodAutoscaler", "api")["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (wanted["minReplicas"], wanted["maxReplicas"])
    (metric,) = spec["metrics"]
    assert metric["type"] == "ContainerResource"
    assert metric["containerResource"]["name"] == "cpu"
    assert metric["containerResource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": wanted["targetCPUUtilizationPercentage"],
    }
    # The container it names exists, and has a CPU request (utilization is measured against it).
    pod = _one(objects, "Deployment", "api")["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == metric["containerResource"]["container"]]
    assert container["resources"]["requests"]["cpu"]


@pytest.mark.parametrize("component", ["relay", "api"])
def test_scaled_deployments_keep_a_disruption_budget_and_spread(
    objects: list[rendering.Json], component: str
) -> None:
    """maxUnavailable, not minAvailable: at the autoscaler's minimum of one, minAvailable 1
    would block every node drain; maxUnavailable 1 lets one pod go at a time at any count."""
    deployment = _one(objects, "Deployment", component)
    selector = deployment["spec"]["selector"]
    budget = _one(objects, "PodDisruptionBudget", component)["spec"]
    assert budget == {"maxUnavailable": 1, "selector": selector}
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # soft: a one-node cluster still schedules
    assert spread["labelSelector"] == selector


def test_keda_objects_are_checked_against_kedas_crds(objects: list[rendering.Json]) -> None:
    """test_chart checks every render's schemas; here, that the KEDA kinds are among those checked
    (by KEDA's CRDs in schemas/), not let through as kinds without a schema."""
    keda = [o for o in objects if o["kind"] in KEDA_KINDS]
    assert len(keda) == 2
    assert all((o["apiVersion"], o["kind"]) in checks.custom_resource_schemas() for o in keda)
    assert checks.schema_errors(keda, "1.31.0") == ([], [])


async def test_the_backlog_query_counts_the_rows_waiting_to_be_published(
    objects: list[rendering.Json], database_url: str
) -> None:
    """Run as KEDA runs it (one row, one number), on the project's migrated schema: rows not
    published count whether new, leased by a relay or waiting out a retry; published ones do not."""
    query = _backlog_query(objects)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await connection.execute(
            """
            INSERT INTO outbox (event_id, topic, event_type, subject, partition_key, payload, published_at)
            SELECT gen_random_uuid(), 'task-events', 'task.updated', 'team-a/task-' || n, 'alice', '{}',
                   CASE WHEN n > 7 THEN now() END
            FROM generate_series(1, 20000) AS n
            """
        )
        # Of the seven waiting: two leased by a relay, one waiting out a retry.
        await connection.execute(
            "UPDATE outbox SET claimed_by = 'relay-1#1', claimed_until = now() + interval '1 minute'"
            " WHERE id IN (SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 2)"
        )
        await connection.execute(
            "UPDATE outbox SET attempts = 1, next_attempt_at = now() + interval '1 minute'"
            " WHERE id = (SELECT max(id) FROM outbox WHERE published_at IS NULL)"
        )
        cursor = await connection.execute(query)
        rows = await cursor.fetchall()
        assert rows == [(7,)]
        # The relay's own count of its backlog agrees.
        backlog = await OutboxStore(connection).backlog()
        assert backlog.unpublished == 7

        # Cheap at every poll: read from the partial index of the unpublished rows, not the table.
        await connection.execute("VACUUM ANALYZE outbox")
        cursor = await connection.execute(f"EXPLAIN {query}")
        plan: list[Any] = await cursor.fetchall()
        assert "outbox_unpublished" in "\n".join(line for (line,) in plan), plan
