"""Tasks through the REST shim: the happy path of every endpoint, ETags, filters, search, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api import harness
from tests.api.harness import ALICE, BOB, Api, wait_for, wait_listed
from tests.kubeclient import KubeClient
from todo_operator.api import names

# The harness fixtures, offered to this module.
api = harness.api
make_api = harness.make_api


def settled(kube: KubeClient, namespace: str, body: dict[str, Any], *, generation: int = 1) -> None:
    object_name = names.object_name(owner=body["owner"], public=body["name"])
    kube.wait_for_status(
        "tasks",
        namespace,
        object_name,
        lambda status: status.get("observedGeneration") == generation,
        what="observed",
    )


def test_create_get_list_patch_complete_delete(api: Api, kube: KubeClient, namespace: str) -> None:
    alice = api.as_user(ALICE)
    due = (datetime.now(tz=UTC) + timedelta(days=2)).replace(microsecond=0)
    created = alice.post(
        "/api/v1/tasks",
        json={
            "name": "passport",
            "title": "Renew passport",
            "priority": "urgent",
            "tags": ["admin"],
            "dueAt": due.isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "passport"
    assert body["owner"] == ALICE
    assert created.headers["ETag"].endswith('.1"')  # the spec's first generation
    assert created.headers["Location"] == "/api/v1/tasks/passport"

    items = wait_listed(alice, {"passport"})
    assert items[0]["priority"] == "urgent"
    # The operator writes status after the row: that moves the resourceVersion, not the ETag,
    # so an If-Match taken before the status write still holds.
    settled(kube, namespace, body)

    got = alice.get("/api/v1/tasks/passport")
    assert got.status_code == 200
    assert got.json()["title"] == "Renew passport"
    assert datetime.fromisoformat(got.json()["nextOccurrence"]) == due  # a one-off's: its due time while open
    assert got.json()["nextOccurrence"] == items[0]["nextOccurrence"]
    assert got.headers["ETag"] == created.headers["ETag"]

    patched = alice.patch(
        "/api/v1/tasks/passport",
        json={"title": "Renew the passport"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Renew the passport"

    completed = alice.post("/api/v1/tasks/passport/complete")
    assert completed.status_code == 200, completed.text
    assert completed.json()["completed"] is True
    assert completed.json()["nextOccurrence"] is None
    assert completed.json()["phase"] == "Completed"
    # The list and the object say an instant the same way (UTC, "Z"), whatever zone it was written in.
    assert got.json()["dueAt"] == items[0]["dueAt"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    wait_for(
        "the status says Completed",
        lambda: alice.get("/api/v1/tasks/passport").json()["phase"] == "Completed",
    )

    # The answer shows the state the change causes, not the status written before it.
    reopened = alice.patch("/api/v1/tasks/passport", json={"completed": False})
    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["completed"], reopened.json()["phase"]) == (False, "Open")

    deleted = alice.delete("/api/v1/tasks/passport")
    assert deleted.status_code == 204
    assert alice.get("/api/v1/tasks/passport").status_code == 404


def test_stale_if_match_is_412_and_nothing_changes(api: Api, kube: KubeClient, namespace: str) -> None:
    alice = api.as_user(ALICE)
    created = alice.post("/api/v1/tasks", json={"name": "milk", "title": "Buy milk"})
    assert created.status_code == 201
    stale = created.headers["ETag"]
    assert alice.patch("/api/v1/tasks/milk", json={"priority": "high"}).status_code == 200
    for response in (
        alice.patch("/api/v1/tasks/milk", json={"title": "Buy oat milk"}, headers={"If-Match": stale}),
        alice.post("/api/v1/tasks/milk/complete", headers={"If-Match": stale}),
        alice.delete("/api/v1/tasks/milk", headers={"If-Match": stale}),
    ):
        assert response.status_code == 412, response.text
        assert response.headers["content-type"] == "application/problem+json"
    current = alice.get("/api/v1/tasks/milk").json()
    assert current["title"] == "Buy milk"
    assert current["completed"] is False


def test_bad_input_is_a_problem_naming_the_field(api: Api) -> None:
    alice = api.as_user(ALICE)
    cases = [
        ({"title": ""}, "title"),
        ({"title": "x", "owner": "bob@example.com"}, "owner"),
        ({"title": "x", "reminders": [{"before": "1h"}]}, ""),
        ({"title": "x", "dueAt": "2026-12-10T09:00:00"}, "dueAt"),
        ({"title": "x", "tags": ["not a tag"]}, "tags.0"),
        ({"title": "x\u0000y"}, ""),
        ({"title": "x", "name": "Bad_Name"}, "name"),
    ]
    for body, field in cases:
        response = alice.post("/api/v1/tasks", json=body)
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["status"] == 422, problem
        assert problem["errors"], problem
        if field:
            assert any(error["field"] == field for error in problem["errors"]), problem
    for path in (
        "/api/v1/tasks?sort=owner",
        "/api/v1/tasks?limit=100000",
        "/api/v1/tasks?limit=0",
        "/api/v1/tasks?dueBefore=tomorrow",
        "/api/v1/tasks?dueBefore=2026-01-01T00:00:00",
        "/api/v1/tasks?status=lost",
        "/api/v1/tasks?q=%00",
        "/api/v1/tasks?tag=a%20b",
    ):
        response = alice.get(path)
        assert response.status_code == 422, (path, response.text)
    assert alice.get("/api/v1/tasks?cursor=garbage").status_code == 400
    not_json = alice.post("/api/v1/tasks", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400  # not JSON: a bad request, no field to name (test_api_edges.py)
    huge = alice.post("/api/v1/tasks", content=b"x" * 200_000, headers={"Content-Type": "application/json"})
    assert huge.status_code == 413


def test_write_rate_limit_answers_429_with_retry_after(
    make_api: Any, namespace: str, operator: object
) -> None:
    api = make_api(namespace, writes_per_minute=3)
    alice = api.as_user(ALICE)
    answers = [alice.post("/api/v1/tasks", json={"title": f"t{index}"}).status_code for index in range(4)]
    assert answers == [201, 201, 201, 429]
    limited = alice.post("/api/v1/tasks", json={"title": "again"})
    assert int(limited.headers["Retry-After"]) >= 1
    assert api.as_user("carol@example.com").post("/api/v1/tasks", json={"title": "mine"}).status_code == 201
    assert alice.get("/api/v1/tasks").status_code == 200  # reads are not limited


def test_pages_follow_a_stable_order_with_cursors_bound_to_the_caller(api: Api, namespace: str) -> None:
    alice = api.as_user(ALICE)
    for index in range(7):
        assert (
            alice.post("/api/v1/tasks", json={"name": f"t{index}", "title": f"Task {index}"}).status_code
            == 201
        )
    wait_listed(alice, {f"t{index}" for index in range(7)})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "sort": "title"}
        if cursor:
            params["cursor"] = cursor
        page = alice.get("/api/v1/tasks", params=params).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
        assert api.as_user(BOB).get("/api/v1/tasks", params={**params, "cursor": cursor}).status_code == 400
        assert (
            alice.get("/api/v1/tasks", params={"limit": 3, "sort": "-title", "cursor": cursor}).status_code
            == 400
        )
    assert seen == [f"t{index}" for index in range(7)]


def test_schedule_previews_have_a_limit_of_their_own(make_api: Any, namespace: str) -> None:
    # A preview writes nothing but can cost seconds of the schedule engine: limited apart from writes.
    api = make_api(namespace, previews_per_minute=2, writes_per_minute=100)
    alice = api.as_user(ALICE)
    body = {"schedule": {"every": "daily", "start": "2030-01-01T09:00:00"}, "count": 2}
    answers = [alice.post("/api/v1/schedules/preview", json=body) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json()["detail"].startswith("at most 2 schedule previews per minute")
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert alice.post("/api/v1/tasks", json={"title": "still allowed"}).status_code == 201
    assert api.as_user("carol@example.com").post("/api/v1/schedules/preview", json=body).status_code == 200
