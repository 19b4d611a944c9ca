"""Operator shards: several operators against one API server, each serving its own namespaces.

The shards' settings are the chart's: each test renders ``operator.shards``
with a real ``helm template`` and starts one operator per rendered
Deployment, with that Deployment's ``TODO_NAMESPACES``,
``TODO_NAMESPACES_EXCLUDED`` and ``TODO_SHARD``. Who acted on an object is
read where a user reads it: the ``reportingInstance`` of the Kubernetes
Events posted about it (``kubectl describe``).
"""

from __future__ import annotations

import collections
import pathlib
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from tests.faults.apiserver.conftest import Stack, ready, recurring_task, running_stack, tomorrow_at_nine
from tests.faults.record import assert_nothing_lost_nothing_twice
from tests.manifests import rendering
from todo_devstack.operator_thread import OperatorThread
from todo_operator.domain import resources

REMINDER = [{"before": "1h"}]
# First match wins: team-a-* before team-*, which would take it otherwise.
THREE_SHARDS = {"a": ["team-a-*"], "b": ["team-*", "payments"]}
NAMESPACES = ["team-a-1", "team-a-2", "team-b-1", "team-c", "payments", "other", "default-ish"]


def chart_shards(shards: Mapping[str, Sequence[str]], workdir: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Each operator Deployment a real ``helm template`` renders for ``operator.shards``, as the
    settings it gives its operator: shard name -> the TODO_* overrides."""
    workdir.mkdir(exist_ok=True)
    values = rendering.load_values(rendering.CHART / "values.yaml")
    values["operator"]["shards"] = [
        {"name": name, "namespaces": list(globs)} for name, globs in shards.items()
    ]
    rendered = rendering.render_charts({"shards": values}, workdir=workdir)["shards"]
    assert not isinstance(rendered, str), rendered
    found = {}
    for obj in rendered:
        if obj["kind"] != "Deployment":
            continue
        containers = [c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"]
        if not containers:
            continue
        env = {item["name"]: item.get("value", "") for item in containers[0]["env"]}
        split = [glob for glob in env["TODO_NAMESPACES"].split(",") if glob]
        excluded = [glob for glob in env["TODO_NAMESPACES_EXCLUDED"].split(",") if glob]
        found[env["TODO_SHARD"]] = {
            "namespaces": split,
            "namespaces_excluded": excluded,
            "shard": env["TODO_SHARD"],
        }
    assert set(found) == {*shards, "default"}, found
    return found


def owner_of(namespace: str) -> str:
    """The shard that must serve ``namespace`` in THREE_SHARDS (written out by hand)."""
    if namespace.startswith("team-a-"):
        return "a"
    if namespace.startswith("team-") or namespace == "payments":
        return "b"
    return "default"


class Shards:
    """The operator shards of one test: started, stopped and asked what they did."""

    def __init__(self, stack: Stack, layout: Mapping[str, dict[str, Any]]) -> None:
        self.stack = stack
        self.layout = layout
        self.running: dict[str, list[OperatorThread]] = collections.defaultdict(list)

    def start(self, name: str, **overrides: Any) -> OperatorThread:
        operator = self.stack.start_operator(**(self.layout[name] | overrides))
        self.running[name].append(operator)
        return operator

    def stop(self, name: str) -> None:
        for operator in self.running.pop(name):
            operator.stop()

    def create(self, namespace: str, name: str = "chores", **template: Any) -> None:
        self.stack.kube.create("recurringtasks", namespace, recurring_task(name, **template))

    def occurrence(self, namespace: str, name: str = "chores") -> int:
        found = [
            obj
            for obj in self.stack.api.objects(f"{resources.API_VERSION}/recurringtasks", namespace)
            if obj["metadata"]["name"] == name
        ]
        status = (found[0].get("status") or {}) if found else {}
        return int(status.get("occurrences", 0)) if ready(status) else 0

    def wait_occurrence(self, namespace: str, occurrences: int, name: str = "chores") -> str:
        self.stack.wait_for(
            f"{namespace}/{name}: occurrence {occurrences}",
            lambda: self.occurrence(namespace, name) == occurrences,
        )
        body = self.stack.kube.get("recurringtasks", namespace, name)
        assert body is not None
        current: str = body["status"]["currentTask"]
        return current

    def complete(self, namespace: str, task: str) -> None:
        self.stack.kube.patch("tasks", namespace, task, {"spec": {"completed": True}})

    def acted_in(self, namespace: str) -> set[str]:
        """The shards named by the Events posted in ``namespace`` (their reportingInstance), once
        there are some (they are posted after the change they tell of)."""
        events = self.stack.wait_for(
            f"events in {namespace}", lambda: self.stack.api.objects("v1/events", namespace)
        )
        return {event.get("reportingInstance", "(none)").removeprefix("todo-operator-") for event in events}


@pytest.fixture
def stack(database_url: str) -> Iterator[Stack]:
    with running_stack(database_url, replicas=0) as running:
        for namespace in NAMESPACES:
            running.kube.create_namespace(namespace)
        yield running


def assert_whole(stack: Stack, namespaces: Sequence[str], *, occurrences: int, mails: int) -> None:
    for namespace in namespaces:
        assert_nothing_lost_nothing_twice(stack.sources, namespace, occurrences={"chores": occurrences})
    sent = collections.Counter(str(message["Message-ID"]) for message in stack.smtp.messages)
    assert len(sent) == mails, sent
    assert set(sent.values()) == {1}, sent


def test_three_shards_serve_every_namespace_once(stack: Stack, tmp_path: pathlib.Path) -> None:
    shards = Shards(stack, chart_shards(THREE_SHARDS, tmp_path))
    for name in ("a", "b", "default"):
        shards.start(name)
    for namespace in NAMESPACES:
        shards.create(namespace, reminders=REMINDER)
    first = {namespace: shards.wait_occurrence(namespace, 1) for namespace in NAMESPACES}
    stack.wait_published()
    stack.clock.set(
        tomorrow_at_nine() - timedelta(minutes=30)
    )  # every reminder due, each shard sends its own
    stack.smtp.wait_for(len(NAMESPACES))
    for namespace, task in first.items():
        shards.complete(namespace, task)
    for namespace in NAMESPACES:
        shards.wait_occurrence(namespace, 2)

    assert_whole(stack, NAMESPACES, occurrences=2, mails=len(NAMESPACES))
    assert {namespace: shards.acted_in(namespace) for namespace in NAMESPACES} == {
        namespace: {owner_of(namespace)} for namespace in NAMESPACES
    }


def test_two_shards_the_default_serves_the_rest(stack: Stack, tmp_path: pathlib.Path) -> None:
    shards = Shards(stack, chart_shards({"payments": ["payments"]}, tmp_path))
    shards.start("payments")
    shards.start("default")
    for namespace in ("payments", "team-a-1", "other"):
        shards.create(namespace)
    for namespace in ("payments", "team-a-1", "other"):
        shards.wait_occurrence(namespace, 1)

    assert shards.acted_in("payments") == {"payments"}
    assert shards.acted_in("team-a-1") == shards.acted_in("other") == {"default"}


def test_a_shard_down_delays_only_its_own_namespaces(stack: Stack, tmp_path: pathlib.Path) -> None:
    shards = Shards(stack, chart_shards(THREE_SHARDS, tmp_path))
    for name in ("a", "b", "default"):
        shards.start(name)
    shards.create("team-b-1", reminders=REMINDER)
    shards.wait_occurrence("team-b-1", 1)
    stack.wait_published()

    shards.stop("b")
    for namespace in ("team-a-1", "team-c", "other"):
        shards.create(namespace, reminders=REMINDER)
    shards.wait_occurrence("team-a-1", 1)
    shards.wait_occurrence("other", 1)
    # Its reminder falls due while it is down: nobody else sends it (nor reconciles its new object).
    stack.wait_published()  # (a clock jump mid-publish lets one relay take over another's lease)
    stack.clock.set(tomorrow_at_nine() - timedelta(minutes=30))
    stack.smtp.wait_for(2)
    time.sleep(1.0)
    assert shards.occurrence("team-c") == 0
    assert len(stack.smtp.messages) == 2

    shards.start("b")  # restarted: it catches up with what happened meanwhile, once
    shards.wait_occurrence("team-c", 1)
    stack.smtp.wait_for(4)
    assert_whole(stack, ["team-a-1", "team-b-1", "team-c", "other"], occurrences=1, mails=4)
    assert shards.acted_in("team-c") == shards.acted_in("team-b-1") == {"b"}


def test_adding_a_shard_moves_its_namespaces_without_loss_or_double_handling(
    stack: Stack, tmp_path: pathlib.Path
) -> None:
    before = Shards(stack, chart_shards({"a": ["team-a-*"]}, tmp_path / "before"))
    after = Shards(stack, chart_shards(THREE_SHARDS, tmp_path / "after"))
    before.start("a")
    before.start("default")
    moving = ["team-b-1", "payments"]
    for namespace in [*moving, "other"]:
        before.create(namespace, reminders=REMINDER)
    first = {namespace: before.wait_occurrence(namespace, 1) for namespace in [*moving, "other"]}
    assert before.acted_in("team-b-1") == {"default"}

    # `helm upgrade` adding shard b: its pod starts while the old default pod still runs (for a
    # moment both serve team-b-1 and payments) and a change lands in that moment ...
    after.start("b")
    before.complete("team-b-1", first["team-b-1"])
    after.wait_occurrence("team-b-1", 2)
    # ... then Recreate replaces the default pod with one that leaves them to b.
    before.stop("default")
    after.start("default")
    before.complete("payments", first["payments"])
    before.complete("other", first["other"])
    for namespace in [*moving, "other"]:
        after.wait_occurrence(namespace, 2)
    seen = {namespace: event_names(stack, namespace) for namespace in moving}
    after.create("team-b-1", "bins")  # new objects in a moved namespace: b's
    after.wait_occurrence("team-b-1", 1, name="bins")
    stack.wait_published()
    stack.clock.set(tomorrow_at_nine() + timedelta(days=1) - timedelta(minutes=30))  # the 2nd ones due
    stack.smtp.wait_for(3)

    for namespace in moving:  # what happened there since: b's doing alone
        new = stack.wait_for(
            f"new events in {namespace}", lambda ns=namespace: new_events(stack, ns, seen[ns])
        )
        assert {e.get("reportingInstance") for e in new} == {"todo-operator-b"}, (namespace, new)
    assert_nothing_lost_nothing_twice(stack.sources, "team-b-1", occurrences={"chores": 2, "bins": 1})
    assert_whole(stack, ["payments", "other"], occurrences=2, mails=3)


def new_events(stack: Stack, namespace: str, seen: set[str]) -> list[dict[str, Any]]:
    return [e for e in stack.api.objects("v1/events", namespace) if e["metadata"]["name"] not in seen]


def event_names(stack: Stack, namespace: str) -> set[str]:
    return {event["metadata"]["name"] for event in stack.api.objects("v1/events", namespace)}
