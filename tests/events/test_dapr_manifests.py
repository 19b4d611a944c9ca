"""The Dapr resources in manifests/dapr and the topic script: structure and the seed's numbers."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests import ROOT
from todo_operator.events import consumer, schemas

DAPR = ROOT / "manifests" / "dapr"
KINDS = {"Component", "Resiliency", "Configuration", "Subscription"}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DAPR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def _seconds(duration: str) -> float:
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


@pytest.mark.parametrize(("file", "document"), _documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_resource_is_a_dapr_resource_with_a_name(file: str, document: dict[str, Any]) -> None:
    assert document["apiVersion"] == "dapr.io/v1alpha1"
    assert document["kind"] in KINDS
    assert document["metadata"]["name"]
    # No namespace: applied with `kubectl apply -n <the chart's namespace>`, since Dapr loads only
    # the components of the app's own namespace (a fixed one made that apply fail for any other).
    assert "namespace" not in document["metadata"]
    if document["kind"] == "Component":
        assert re.fullmatch(r"(pubsub|secretstores)\.[a-z.]+", document["spec"]["type"])
        assert document["spec"]["version"] == "v1"
        for item in document["spec"]["metadata"]:
            assert ("value" in item) != ("secretKeyRef" in item), item


def test_kafka_components_give_each_app_its_consumer_group_and_use_managed_credentials() -> None:
    # Each file's shared component (pubsub-live, beside it, is read by the test below).
    components = {
        file: doc
        for file, doc in _documents()
        if doc["kind"] == "Component" and doc["metadata"]["name"] != "pubsub-live"
    }
    for file in ("pubsub-kafka.yaml", "pubsub-kafka-managed.yaml"):
        component = components[file]
        assert component["spec"]["type"] == "pubsub.kafka"
        metadata = {item["name"]: item for item in component["spec"]["metadata"]}
        # One consumer group per app id (Dapr's default), never one shared by every app.
        assert "consumerGroup" not in metadata
        assert "consumerID" not in metadata
        assert component["metadata"]["name"] == "pubsub"
    managed = {item["name"]: item for item in components["pubsub-kafka-managed.yaml"]["spec"]["metadata"]}
    assert managed["authType"]["value"] == "password"
    assert managed["saslMechanism"]["value"].startswith("SCRAM-SHA-")
    assert managed["disableTls"]["value"] == "false"
    assert "secretKeyRef" in managed["saslPassword"]
    assert "secretKeyRef" in managed["saslUsername"]
    stores = {doc["spec"]["type"] for _, doc in _documents() if doc["kind"] == "Component"}
    assert {"secretstores.kubernetes", "secretstores.oci.vault"} <= stores


def _chart_app_ids() -> dict[str, str]:
    values = yaml.safe_load((ROOT / "manifests" / "helm" / "todo-operator" / "values.yaml").read_text())
    return {key: value for key, value in values["dapr"].items() if key.endswith("AppId")}


def test_the_api_subscribes_programmatically_and_nothing_overrides_it() -> None:
    # The API serves /events/task-events and /events/reminders only. A declarative Subscription
    # scoped to it (or to no app, which means every app) would send it a topic it answers 404,
    # and Dapr drops a message answered 404: it is how task-updates used to be lost.
    apps = _chart_app_ids()
    for file, doc in _documents():
        if doc["kind"] == "Subscription":
            scopes = doc.get("scopes") or []
            assert scopes, f"{file}: {doc['metadata']['name']} has no scopes: it applies to every app"
            assert not set(scopes) & set(apps.values()), f"{file}: {doc['metadata']['name']}"
    programmatic = consumer.subscriptions()
    assert {s["topic"] for s in programmatic} == {"task-events", "reminders"}
    for spec in programmatic:
        assert spec["route"] == f"{consumer.ROUTE_PREFIX}/{spec['topic']}"
        assert spec["deadLetterTopic"] == consumer.dead_letter_topic(spec["topic"])
    pubsub = {doc["metadata"]["name"]: doc for _, doc in _documents() if doc["kind"] == "Component"}["pubsub"]
    assert apps["apiAppId"] in pubsub["scopes"]


def test_every_api_replica_reads_task_updates_for_its_pages() -> None:
    # A page may be connected to any API replica: on pubsub-live each replica is a consumer group
    # of its own ({podName}), beside the shared pubsub where the replicas split the work.
    apps = _chart_app_ids()
    for file in ("pubsub-kafka.yaml", "pubsub-kafka-managed.yaml"):
        components = {doc["metadata"]["name"]: doc for name, doc in _documents() if name == file}
        live, shared = components["pubsub-live"], components["pubsub"]
        metadata = {item["name"]: item for item in live["spec"]["metadata"]}
        assert metadata["consumerID"]["value"] == "{podName}", file
        assert metadata["initialOffset"]["value"] == "newest", file
        assert "consumerGroup" not in metadata, file  # it would override consumerID
        brokers = {item["name"]: item for item in shared["spec"]["metadata"]}["brokers"]
        assert metadata["brokers"] == brokers, file
        assert live["scopes"] == [apps["apiAppId"]], file
    values = yaml.safe_load((ROOT / "manifests" / "helm" / "todo-operator" / "values.yaml").read_text())
    assert values["dapr"]["livePubsubName"] == "pubsub-live"


def test_each_app_gets_one_delivery_retry_policy() -> None:
    # Dapr applies inbound resiliency per app and component, not per topic: an app in two
    # Resiliency scopes with inbound policies for the same component gets one of them, unsaid which.
    inbound: dict[str, list[str]] = {}
    for _, doc in _documents():
        if doc["kind"] == "Resiliency":
            target = doc["spec"]["targets"]["components"]["pubsub"]
            if "inbound" in target:
                for app in doc["scopes"]:
                    inbound.setdefault(app, []).append(target["inbound"]["retry"])
    assert all(len(policies) == 1 for policies in inbound.values()), inbound
    # The API consumes task-events and reminders: it gets the task-events policy.
    assert inbound[_chart_app_ids()["apiAppId"]] == ["taskCompletion"]


def test_resiliency_policies_match_the_seed() -> None:
    resiliencies = [doc for _, doc in _documents() if doc["kind"] == "Resiliency"]
    retries: dict[str, dict[str, Any]] = {}
    for doc in resiliencies:
        retries.update(doc["spec"]["policies"]["retries"])
    assert retries["taskCompletion"]["maxRetries"] == 3
    assert _seconds(retries["taskCompletion"]["maxInterval"]) == 30 * 60
    assert retries["reminders"] == {"policy": "exponential", "maxInterval": "512s", "maxRetries": 10}
    assert retries["updates"] == {"policy": "exponential", "maxInterval": "16s", "maxRetries": 5}
    schedule = resiliencies[0]["metadata"]["annotations"]
    assert [_seconds(s) for s in schedule["todo.dev/schedule.taskCompletion"].split(",")] == [30, 300, 1800]
    assert [_seconds(s) for s in schedule["todo.dev/schedule.reminders"].split(",")] == [
        2**n for n in range(10)
    ]
    assert [_seconds(s) for s in schedule["todo.dev/schedule.updates"].split(",")] == [2**n for n in range(5)]
    inbound = {
        doc["metadata"]["name"]: doc["spec"]["targets"]["components"]["pubsub"]["inbound"]["retry"]
        for doc in resiliencies
    }
    assert inbound == {
        "todo-events": "taskCompletion",
        "todo-reminders": "reminders",
        "todo-updates": "updates",
    }


def test_tracing_goes_to_zipkin() -> None:
    [configuration] = [doc for _, doc in _documents() if doc["kind"] == "Configuration"]
    tracing = configuration["spec"]["tracing"]
    assert tracing["samplingRate"] == "1"
    assert tracing["zipkin"]["endpointAddress"].endswith("/api/v2/spans")


def test_topic_script_creates_every_topic_idempotently(tmp_path: pathlib.Path) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = {**os.environ, "KAFKA_TOPICS": str(fake), "BOOTSTRAP": "kafka:9092"}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "create-kafka-topics.sh")], env=env, check=True, capture_output=True
    )
    lines = calls.read_text().splitlines()
    topics = {line.split("--topic ")[1].split()[0] for line in lines}
    assert topics == set(schemas.TOPICS) | {consumer.dead_letter_topic(t) for t in schemas.TOPICS}
    assert all("--if-not-exists" in line and "--partitions 12" in line for line in lines)
    assert all("retention.ms=" in line for line in lines)


def test_components_are_scoped_to_the_chart_app_ids_and_the_relay_gets_no_secret_store() -> None:
    apps = _chart_app_ids()
    assert set(apps) == {"operatorAppId", "apiAppId", "relayAppId"}
    documents = {(file, doc["metadata"]["name"]): doc for file, doc in _documents()}
    publishers = {apps["operatorAppId"], apps["relayAppId"]}  # the relay runs in one or the other
    for file in ("pubsub-kafka.yaml", "pubsub-kafka-managed.yaml"):
        assert publishers | {apps["apiAppId"]} <= set(documents[(file, "pubsub")]["scopes"])
    assert publishers <= set(documents[("resiliency.yaml", "todo-events")]["scopes"])
    # The relay's pod mounts no ServiceAccount token: a Kubernetes secret store could not start there.
    secret_store = documents[("secretstores.yaml", "kubernetes")]
    assert apps["relayAppId"] not in secret_store["scopes"]
    assert {apps["operatorAppId"], apps["apiAppId"]} <= set(secret_store["scopes"])


def test_every_component_is_scoped_and_minikube_applies_one_of_each() -> None:
    # A component without scopes is loaded by every Dapr app of the namespace, and a sidecar
    # whose component fails to initialise (OCI Vault off OKE) does not start.
    components = [(file, doc) for file, doc in _documents() if doc["kind"] == "Component"]
    assert all(doc.get("scopes") for _, doc in components), [f for f, d in components if not d.get("scopes")]
    script = (ROOT / "scripts" / "deploy-minikube.sh").read_text()
    applied = set(re.findall(r"-f manifests/dapr/([\w.-]+\.yaml)", script))
    assert applied == {"configuration.yaml", "resiliency.yaml", "secretstores.yaml", "pubsub-kafka.yaml"}
    names = [doc["metadata"]["name"] for file, doc in components if file in applied]
    assert sorted(names) == sorted(set(names)), names  # both Kafka variants are "pubsub": one at a time
