"""F4: two operator replicas at once.

RELIABILITY.md accepts either "only one acts" or "both act idempotently".
What the code supports today:

* standalone replicas (the default, ``TODO_STANDALONE=true``; two of them run
  at once when a node is cut off with its pod still running, or when someone
  scales the Deployment): both act, on every object. This must be
  idempotent: deterministic occurrence names (a second create meets
  AlreadyExists and is accepted), upserts keyed by uid, outbox ids derived
  from the facts, reminders claimed with ``FOR UPDATE SKIP LOCKED``, outbox
  rows leased by one relay at a time. Tested below: it holds. (Two replicas
  upserting the same new row at once can also collide on a live-name unique
  index, which ``ON CONFLICT (uid)`` does not settle; that is retried as
  transient now, instead of Kopf's one-minute backoff for unexpected errors.)
* Kopf peering (``operator.peering.enabled``, the chart's way to run
  ``replicas: 2``): only one acts. Kopf pauses every operator that sees a
  peer of a higher priority, and freezes all of them on a tie (docs.kopf.dev,
  "Peering"), so each replica takes a random priority. The peering CRD and
  object are the ones the Helm chart installs: its crds/ file and the object
  a real ``helm install`` of the chart renders.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import kopf
import psycopg
import pytest
import yaml

from tests.faults.apiserver.conftest import NAMESPACE, Stack, running_stack, scrape, tomorrow_at_nine
from tests.faults.record import assert_nothing_lost_nothing_twice
from tests.manifests import rendering
from todo_operator.operator import handlers

REMINDER = [{"before": "1h"}]
PEERING = "todo-operator"


@pytest.fixture
def two_replicas(database_url: str) -> Iterator[Stack]:
    with running_stack(database_url, replicas=2) as running:
        yield running


def reconciles(url: str) -> float:
    """How many reconciles one replica ran (its own /metrics)."""
    return sum(
        value for (name, _), value in scrape(url).items() if name == "todo_reconcile_duration_seconds_count"
    )


def test_two_standalone_replicas_both_act_and_do_nothing_twice(two_replicas: Stack) -> None:
    stack = two_replicas
    names = ("plants", "bins", "post", "dishes")
    for name in names:
        stack.create_recurring_task(name, reminders=REMINDER)
    for name in names:
        stack.wait_reminders_pending(name)
    first = {name: stack.wait_occurrence(name, 1)["status"]["currentTask"] for name in names}

    # Leases on outbox rows are timed by each relay's clock: a jump while both relays publish
    # would let one take over the other's rows (a duplicate, which at-least-once allows).
    stack.wait_published()
    stack.clock.set(tomorrow_at_nine() - timedelta(minutes=30))  # both schedulers see the reminders due
    stack.smtp.wait_for(len(names))
    for name in names:
        stack.complete(first[name])
    second = stack.wait_occurrence("plants", 2)["status"]["currentTask"]
    stack.complete(second)
    stack.wait_occurrence("plants", 3)

    assert_nothing_lost_nothing_twice(
        stack.sources,
        NAMESPACE,
        occurrences={"plants": 3, "bins": 2, "post": 2, "dishes": 2},
        reminders_sent=len(names),
    )
    # Both replicas really acted (the visible trace: each one's own metrics).
    assert all(reconciles(url) > 0 for url in stack.metrics_urls), [reconciles(u) for u in stack.metrics_urls]
    assert all(operator.alive for operator in stack.operators)


def test_a_unique_violation_from_racing_upserts_is_retried_soon() -> None:
    """Seen with two replicas: PostgreSQL's ON CONFLICT (uid) does not cover the (namespace, name)
    index when two transactions insert the same new row at once; the loser must retry shortly."""

    async def collide(body: dict[str, Any]) -> None:
        raise psycopg.errors.UniqueViolation(
            'duplicate key value violates unique constraint "reminders_live_name"'
        )

    with pytest.raises(kopf.TemporaryError) as raised:
        asyncio.run(
            handlers._call(
                collide, {"metadata": {}}, delay=0.5, kind="Reminder", verb="reconcile", metrics=None
            )
        )
    assert raised.value.delay == 0.5


def chart_peering(workdir: pathlib.Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Kopf's peering CRDs as the chart ships them (crds/) and its peering object, as a real
    `helm install` with ``operator.peering.enabled`` renders it."""
    crds = [
        doc for doc in yaml.safe_load_all((rendering.CHART / "crds" / "kopf-peering.yaml").read_text()) if doc
    ]
    values = rendering.load_values(rendering.CHART / "values.yaml")
    values["operator"] |= {"replicas": 2, "peering": {"enabled": True, "name": PEERING}}
    rendered = rendering.render_charts({"peering": values}, workdir=workdir)["peering"]
    assert not isinstance(rendered, str), rendered
    (peering,) = [obj for obj in rendered if obj["apiVersion"] == "kopf.dev/v1"]
    return crds, peering


def post(stack: Stack, path: str, body: dict[str, Any]) -> None:
    httpx.post(stack.api.url + path, json=body, timeout=10).raise_for_status()


def peers(stack: Stack) -> dict[str, Any]:
    """The replicas recorded in the peering object (identity -> priority, lifetime, last seen)."""
    response = httpx.get(f"{stack.api.url}/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}", timeout=10)
    found: dict[str, Any] = response.json().get("status") or {}
    return found


@pytest.fixture
def two_peered_replicas(database_url: str, tmp_path: pathlib.Path) -> Iterator[Stack]:
    crds, peering = chart_peering(tmp_path)
    with running_stack(database_url, replicas=0, standalone=False, peering_name=PEERING) as stack:
        for crd in crds:
            post(stack, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        post(stack, "/apis/kopf.dev/v1/clusterkopfpeerings", peering)
        stack.start_operator()
        stack.start_operator()
        yield stack


def test_two_peered_replicas_one_acts(two_peered_replicas: Stack, caplog: pytest.LogCaptureFixture) -> None:
    stack = two_peered_replicas
    caplog.set_level(logging.INFO, logger="kopf._core.engines.peering")
    # Once both replicas keep their peering record alive, the one of lower priority pauses (it
    # watches the peering object, so it sees the other's record as soon as it is written).
    stack.wait_for("both replicas in the peering object", lambda: len(peers(stack)) == 2)
    priorities = {record["priority"] for record in peers(stack).values()}
    assert len(priorities) == 2, f"replicas of equal priority would all freeze: {priorities}"
    stack.create_recurring_task("plants")
    stack.wait_occurrence("plants", 1, timeout=5)  # one replica acts (alone it takes well under 1 s) ...
    assert_nothing_lost_nothing_twice(stack.sources, NAMESPACE, occurrences={"plants": 1}, reminders_sent=0)
    acted = [reconciles(url) > 0 for url in stack.metrics_urls]
    assert acted.count(True) == 1, acted  # ... and only one
