"""Users apart (BOLA), tokens checked, and the other endpoints: reminders, activity, admin, Dapr, probes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg

from tests.api import harness
from tests.api.harness import ALICE, AUDIENCE, BOB, ISSUER, SECRET, Api, token, wait_listed
from tests.api.test_recurring import current_task, recurring
from tests.kubeclient import KubeClient

# The harness fixtures, offered to this module.
api = harness.api
make_api = harness.make_api


def test_another_users_objects_are_invisible_and_untouchable(
    api: Api, operator_database_url: str, namespace: str
) -> None:
    alice, bob = api.as_user(ALICE), api.as_user(BOB)
    due = (datetime.now(tz=UTC) + timedelta(days=1)).isoformat()
    assert (
        alice.post(
            "/api/v1/tasks", json={"name": "secret", "title": "Alice's secret", "tags": ["x"], "dueAt": due}
        ).status_code
        == 201
    )
    assert (
        alice.post("/api/v1/recurring-tasks", json=recurring("routine", title="Alice's routine")).status_code
        == 201
    )
    assert (
        alice.post("/api/v1/reminders", json={"name": "nudge", "task": "secret", "before": "1h"}).status_code
        == 201
    )
    occurrence = current_task(alice, "routine", 1)["currentTask"]
    wait_listed(alice, {"secret", occurrence})
    # Bob's own task with the same name is his, not a conflict (names are per user).
    assert bob.post("/api/v1/tasks", json={"name": "secret", "title": "Bob's"}).status_code == 201
    assert bob.get("/api/v1/tasks/secret").json()["title"] == "Bob's"

    for name in ("routine", occurrence):
        assert bob.get(f"/api/v1/tasks/{name}").status_code == 404
    for method, path, body in [
        ("PATCH", f"/api/v1/tasks/{occurrence}", {"title": "mine"}),
        ("POST", f"/api/v1/tasks/{occurrence}/complete", None),
        ("DELETE", f"/api/v1/tasks/{occurrence}", None),
        ("GET", "/api/v1/recurring-tasks/routine", None),
        ("PATCH", "/api/v1/recurring-tasks/routine", {"suspend": True}),
        ("POST", "/api/v1/recurring-tasks/routine/suspend", None),
        ("POST", "/api/v1/recurring-tasks/routine/resume", None),
        ("GET", "/api/v1/recurring-tasks/routine/occurrences", None),
        ("DELETE", "/api/v1/recurring-tasks/routine", None),
        ("DELETE", "/api/v1/reminders/nudge", None),
        ("POST", "/api/v1/reminders", {"task": occurrence, "before": "1h"}),
    ]:
        response = bob.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert "Alice" not in response.text
    # Alice's objects by their cluster names, too (no prefix games).
    object_names = {item["name"] for item in alice.get("/api/v1/tasks").json()["items"]}
    assert object_names == {"secret", occurrence}

    for params in (
        {},
        {"q": "secret"},
        {"tag": "x"},
        {"recurring": "true"},
        {"status": "open"},
        {"sort": "next"},
    ):
        items = bob.get("/api/v1/tasks", params=params).json()["items"]
        assert [item["title"] for item in items if item["title"] != "Bob's"] == [], params
    assert bob.get("/api/v1/recurring-tasks").json()["items"] == []
    assert bob.get("/api/v1/reminders").json()["items"] == []
    assert alice.get("/api/v1/recurring-tasks/routine").json()["suspend"] is False

    # The activity feed: each sees their own events only.
    with psycopg.connect(operator_database_url, autocommit=True) as db:
        for owner, summary in ((ALICE, "Alice did it"), (BOB, "Bob did it")):
            db.execute(
                "INSERT INTO activity (owner, event_id, event_type, subject, summary, occurred_at)"
                " VALUES (%s, %s, 'task.created', %s, %s, now())",
                (owner, str(uuid.uuid4()), f"{namespace}/x", summary),
            )
    assert [item["summary"] for item in alice.get("/api/v1/activity").json()["items"]] == ["Alice did it"]
    assert [item["summary"] for item in bob.get("/api/v1/activity").json()["items"]] == ["Bob did it"]


def test_tokens_are_checked(api: Api) -> None:
    def status(headers: dict[str, str]) -> int:
        return api.client(headers).get("/api/v1/tasks").status_code

    now = int(time.time())
    claims = {"sub": ALICE, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60}
    assert status({}) == 401
    assert status({"Authorization": "Basic YWxpY2U6cHc="}) == 401
    assert status({"Authorization": "Bearer not-a-jwt"}) == 401
    assert status({"Authorization": "Bearer " + jwt.encode(claims, key=None, algorithm="none")}) == 401
    assert (
        status(
            {"Authorization": "Bearer " + token(ALICE, secret="another-secret-another-secret-another-secret")}
        )
        == 401
    )
    assert status({"Authorization": "Bearer " + token(ALICE, ttl=-3600)}) == 401
    assert status({"Authorization": "Bearer " + token(ALICE, iss="https://evil.test")}) == 401
    assert status({"Authorization": "Bearer " + token(ALICE, aud="someone-else")}) == 401
    assert (
        status(
            {"Authorization": "Bearer " + jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET)}
        )
        == 401
    )
    assert status({"Authorization": "Bearer " + token("not-an-email")}) == 403
    assert status({"Authorization": "Bearer " + token(ALICE)}) == 200
    problem = api.anonymous().get("/api/v1/tasks")
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")
    # Admin endpoints need the role.
    assert api.as_user(ALICE).get("/api/v1/admin/dead-letters").status_code == 403
    assert api.as_user(ALICE, admin=True).get("/api/v1/admin/dead-letters").status_code == 200


def test_event_deliveries_need_dapr_app_token_when_one_is_set(make_api: Any, namespace: str) -> None:
    # As the chart runs the API: TODO_API_DAPR_APP_TOKEN from the Secret its sidecar sends.
    api = make_api(namespace, dapr_app_token="the-sidecar's-app-token")
    owner = f"carol-{uuid.uuid4().hex[:8]}@example.com"  # a feed no other test writes into
    event = harness.forged_event(owner, namespace)
    refused = [
        api.client(headers).post("/events/task-events", json=event)
        for headers in ({}, {"dapr-api-token": "a-guess"}, {"dapr-api-token": ""})
    ]
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert refused[0].headers["content-type"] == "application/problem+json"
    feed = api.as_user(owner)
    assert feed.get("/api/v1/activity").json()["items"] == []  # refused deliveries change nothing

    sidecar = api.client({"dapr-api-token": "the-sidecar's-app-token"})
    delivered = sidecar.post("/events/task-events", json=event)
    assert (delivered.status_code, delivered.json()) == (200, {"status": "SUCCESS"})
    assert [item["summary"] for item in feed.get("/api/v1/activity").json()["items"]] == [
        "Task “forged” deleted"
    ]
    # The subscription document stays readable: the sidecar fetches it at start.
    assert api.anonymous().get("/dapr/subscribe").status_code == 200


def test_reminders_activity_admin_dapr_and_probes(
    api: Api, operator_database_url: str, namespace: str
) -> None:
    alice = api.as_user(ALICE)
    due = (datetime.now(tz=UTC) + timedelta(days=3)).isoformat()
    assert (
        alice.post("/api/v1/tasks", json={"name": "dentist", "title": "Dentist", "dueAt": due}).status_code
        == 201
    )
    reminder = alice.post("/api/v1/reminders", json={"task": "dentist", "before": "2h", "message": "Floss"})
    assert reminder.status_code == 201, reminder.text
    name = reminder.json()["name"]
    wait_listed(alice, {name}, "/api/v1/reminders")
    no_due = alice.post("/api/v1/tasks", json={"name": "someday", "title": "Someday"})
    assert no_due.status_code == 201
    refused = alice.post("/api/v1/reminders", json={"task": "someday", "before": "1h"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "before"
    assert alice.delete(f"/api/v1/reminders/{name}").status_code == 204

    # Dapr: the subscription document and a delivery that lands in the feed, once.
    subscriptions = api.anonymous().get("/dapr/subscribe").json()
    assert {item["topic"] for item in subscriptions} == {"task-events", "reminders", "task-updates"}
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "todo-operator",
        "type": "task.created",
        "subject": f"{namespace}/dentist",
        "time": datetime.now(tz=UTC).isoformat(),
        "datacontenttype": "application/json",
        "partitionkey": ALICE,
        "data": {"title": "Dentist", "owner": ALICE},
    }
    sidecar = api.sidecar()  # Dapr's sidecar, with the app token (nobody else may deliver)
    delivered = sidecar.post("/events/task-events", json=event)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] in {"SUCCESS", "DROP"}
    not_json = sidecar.post(
        "/events/task-events", content=b"nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.json() == {"status": "DROP"}
    assert sidecar.post("/events/unknown", json=event).status_code == 404

    # Admin: a dead letter listed and re-queued once.
    with psycopg.connect(operator_database_url, autocommit=True) as db:
        dead_id = db.execute(
            "INSERT INTO dead_letters (outbox_id, event_id, topic, payload, attempts, event_type, subject,"
            " partition_key, created_at)"
            " VALUES (0, %s, 'task-events', '{}', 5, 'task.created', %s, %s, now())"
            " RETURNING id",
            (str(uuid.uuid4()), f"{namespace}/x", ALICE),
        ).fetchone()[0]
    admin = api.as_user("root@example.com", admin=True)
    assert dead_id in {letter["id"] for letter in admin.get("/api/v1/admin/dead-letters").json()}
    assert admin.post(f"/api/v1/admin/dead-letters/{dead_id}/retry").json()["requeued"] is True
    assert admin.post(f"/api/v1/admin/dead-letters/{dead_id}/retry").status_code == 404

    assert api.anonymous().get("/healthz").json()["status"] == "ok"
    ready = api.anonymous().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgresql": "ok", "kubernetes": "ok"}
    metrics = api.anonymous().get("/metrics")
    assert metrics.status_code == 200
    assert "todo_api_requests_total" in metrics.text


def test_a_reminder_stays_its_owners_when_its_task_name_is_reused(
    api: Api, kube: KubeClient, namespace: str
) -> None:
    """F25: ownership follows uids. Alice's task is deleted and a task of the same name made for Bob:
    Alice's reminder (made with kubectl, so no owner reference) does not become Bob's."""
    due = (datetime.now(tz=UTC) + timedelta(days=1)).isoformat()

    def task(owner: str) -> dict[str, Any]:
        spec = {"title": "Reused", "owner": owner, "dueAt": due}
        return {
            "apiVersion": "todo.dev/v1alpha1",
            "kind": "Task",
            "metadata": {"name": "reuse"},
            "spec": spec,
        }

    kube.create("tasks", namespace, task(ALICE))
    reminder = {"taskRef": {"name": "reuse"}, "before": "1h"}
    kube.create(
        "reminders",
        namespace,
        {
            "apiVersion": "todo.dev/v1alpha1",
            "kind": "Reminder",
            "metadata": {"name": "reuse-manual"},
            "spec": reminder,
        },
    )
    alice, bob = api.as_user(ALICE), api.as_user(BOB)
    wait_listed(alice, {"reuse-manual"}, "/api/v1/reminders")
    kube.delete("tasks", namespace, "reuse")
    kube.wait_for_status(
        "reminders",
        namespace,
        "reuse-manual",
        lambda status: status.get("phase") == "Cancelled",
        what="Cancelled",
    )
    kube.wait_for("the task gone", lambda: kube.get("tasks", namespace, "reuse") is None)
    kube.create("tasks", namespace, task(BOB))

    assert bob.delete("/api/v1/reminders/reuse-manual").status_code == 404
    assert kube.get("reminders", namespace, "reuse-manual") is not None
    assert alice.delete("/api/v1/reminders/reuse-manual").status_code == 204
