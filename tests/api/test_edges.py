"""The REST shim at its HTTP edges (issue #16): who may deliver events, what bodies it reads, preconditions.

Each test speaks real HTTP to the app as ``todo-operator api`` serves it
(uvicorn on loopback, the emulator, PostgreSQL); no operator is needed, as
reads of one object and every write go to the API server. Chunked bodies
are sent as a client streams them: httpx with a generator, no
Content-Length.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api import harness
from tests.api.harness import ALICE, Api
from todo_operator.api import names

make_api = harness.make_api

MakeApi = Callable[..., Api]
LIMIT = 64 * 1024  # TODO_API_MAX_BODY_BYTES, its default


def _is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["status"] == status
    return document


def _fields(document: dict[str, Any]) -> list[str]:
    return [error["field"] for error in document["errors"]]


# ---------------------------------------------------------------------- Dapr deliveries fail closed


def test_without_an_app_token_every_delivery_is_refused(make_api: MakeApi, namespace: str) -> None:
    api = make_api(namespace, dapr_app_token=None)
    owner = f"dave-{uuid.uuid4().hex[:8]}@example.com"  # a feed no other test writes into
    for headers in ({}, {"dapr-api-token": ""}, {"dapr-api-token": "a-guess"}):
        refused = api.client(headers).post("/events/task-events", json=harness.forged_event(owner, namespace))
        assert "app token" in _is_problem(refused, 401)["detail"]
    assert api.as_user(owner).get("/api/v1/activity").json()["items"] == []
    assert api.anonymous().get("/dapr/subscribe").status_code == 200  # the sidecar reads it at start


def test_only_the_insecure_setting_lets_unauthenticated_deliveries_in_and_it_says_so(
    make_api: MakeApi, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="todo_operator.api"):
        api = make_api(namespace, dapr_app_token=None, dapr_insecure_allow_unauthenticated=True)
    assert any(
        record.levelno == logging.WARNING and "TODO_API_DAPR_INSECURE_ALLOW_UNAUTHENTICATED" in record.message
        for record in caplog.records
    ), caplog.records
    owner = f"erin-{uuid.uuid4().hex[:8]}@example.com"
    delivered = api.anonymous().post("/events/task-events", json=harness.forged_event(owner, namespace))
    assert (delivered.status_code, delivered.json()) == (200, {"status": "SUCCESS"})


# ---------------------------------------------------------------------- 413 for every body over the limit


def _streamed(size: int, *, chunk: int = 4096) -> Iterator[bytes]:
    """A body a client streams (Transfer-Encoding: chunked): the server learns its size only by counting."""
    sent = 0
    while sent < size:
        piece = min(chunk, size - sent)
        yield b" " * piece
        sent += piece


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/events/task-events"], ids=["rest", "dapr"])
@pytest.mark.parametrize("how", ["streamed", "announced"])
def test_a_body_over_the_limit_is_413_however_it_is_sent(
    make_api: MakeApi, namespace: str, caplog: pytest.LogCaptureFixture, path: str, how: str
) -> None:
    api = make_api(namespace)
    client = api.as_user(ALICE) if path.startswith("/api/") else api.sidecar()
    size = LIMIT + 1
    content: Any = _streamed(size) if how == "streamed" else b" " * size
    with caplog.at_level(logging.WARNING):
        refused = client.post(path, content=content, headers={"Content-Type": "application/json"})
    document = _is_problem(refused, 413)
    assert str(LIMIT) in document["detail"]
    # Refused at the edge: no 500, no traceback in the log (uvicorn's or ours).
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


def test_a_streamed_body_under_the_limit_reaches_the_route(make_api: MakeApi, namespace: str) -> None:
    api = make_api(namespace)
    body = json.dumps({"name": "streamed", "title": "Streamed"}).encode()
    created = api.as_user(ALICE).post(
        "/api/v1/tasks", content=iter([body[:7], body[7:]]), headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["title"] == "Streamed"


# ---------------------------------------------------------------------- 415 for what is not JSON


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
    ids=["text", "form", "multipart", "absent"],
)
def test_a_non_json_body_is_415(make_api: MakeApi, namespace: str, content_type: str | None) -> None:
    api = make_api(namespace)
    headers = {} if content_type is None else {"Content-Type": content_type}
    refused = api.as_user(ALICE).post(
        "/api/v1/tasks", content=b'{"name": "x", "title": "y"}', headers=headers
    )
    document = _is_problem(refused, 415)
    assert "application/json" in document["detail"]
    assert refused.headers["Accept-Post"] == "application/json"


def test_media_types_each_route_accepts(make_api: MakeApi, namespace: str) -> None:
    api = make_api(namespace)
    alice = api.as_user(ALICE)
    body = b'{"name": "typed", "title": "Typed"}'
    # Parameters are fine; JSON is UTF-8, so another charset is not.
    created = alice.post(
        "/api/v1/tasks", content=body, headers={"Content-Type": "Application/JSON; charset=utf-8"}
    )
    assert created.status_code == 201, created.text
    _is_problem(
        alice.post(
            "/api/v1/tasks", content=body, headers={"Content-Type": "application/json; charset=latin-1"}
        ),
        415,
    )
    # A PATCH is a JSON merge patch (RFC 7396): its own media type is accepted there, and named.
    patched = alice.patch(
        "/api/v1/tasks/typed",
        content=b'{"title": "Retyped"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    refused = alice.patch(
        "/api/v1/tasks/typed", content=b'{"title": "x"}', headers={"Content-Type": "text/plain"}
    )
    _is_problem(refused, 415)
    assert refused.headers["Accept-Patch"] == "application/json, application/merge-patch+json"
    # ... but a merge patch is not something to POST.
    _is_problem(
        alice.post("/api/v1/tasks", content=body, headers={"Content-Type": "application/merge-patch+json"}),
        415,
    )
    # Dapr delivers structured CloudEvents as application/cloudevents+json.
    sidecar = api.sidecar()
    event = json.dumps(harness.forged_event(f"fay-{uuid.uuid4().hex[:8]}@example.com", namespace)).encode()
    for media_type in ("application/cloudevents+json", "application/json"):
        delivered = sidecar.post("/events/task-events", content=event, headers={"Content-Type": media_type})
        assert delivered.status_code == 200, delivered.text
    refused = sidecar.post("/events/task-events", content=event, headers={"Content-Type": "text/plain"})
    _is_problem(refused, 415)
    assert refused.headers["Accept-Post"] == "application/cloudevents+json, application/json"


# ---------------------------------------------------------------------- problems that name the field


def test_malformed_json_is_400_with_line_and_column(make_api: MakeApi, namespace: str) -> None:
    api = make_api(namespace)
    refused = api.as_user(ALICE).post(
        "/api/v1/tasks",
        content=b'{"name": "x",\n "title": }',
        headers={"Content-Type": "application/json"},
    )
    document = _is_problem(refused, 400)
    assert document["detail"] == "the request body is not valid JSON: Expecting value at line 2 column 11"
    assert document["errors"] == []  # no field: the offset is not one
    for content, detail in ((b'{"title": "\xff"}', "not valid UTF-8"), (b"[" * 60_000, "nested too deeply")):
        refused = api.as_user(ALICE).post(
            "/api/v1/tasks", content=content, headers={"Content-Type": "application/json"}
        )
        assert detail in _is_problem(refused, 400)["detail"]
    # Dapr's route drops what is not JSON, however deep (it answered 500 to this).
    dropped = api.sidecar().post(
        "/events/task-events", content=b"[" * 60_000, headers={"Content-Type": "application/json"}
    )
    assert (dropped.status_code, dropped.json()) == (200, {"status": "DROP"})


def test_duplicate_tags_name_the_field_never_the_object(make_api: MakeApi, namespace: str) -> None:
    api = make_api(namespace)
    alice = api.as_user(ALICE)
    internal = names.owner_prefix(ALICE)
    assert alice.post("/api/v1/tasks", json={"name": "tagged", "title": "Tagged"}).status_code == 201
    answers = [
        alice.post("/api/v1/tasks", json={"name": "dup", "title": "Dup", "tags": ["a", "b", "a"]}),
        alice.patch("/api/v1/tasks/tagged", json={"tags": ["a", "a"]}),
        alice.post(
            "/api/v1/recurring-tasks",
            json={
                "name": "dup",
                "schedule": {"every": "weekly", "start": "2027-03-01T09:00:00"},
                "taskTemplate": {"title": "Dup", "tags": ["a", "a"]},
            },
        ),
    ]
    for answer, field in zip(answers, ["tags", "tags", "taskTemplate.tags"], strict=True):
        document = _is_problem(answer, 422)
        assert _fields(document) == [field], document
        assert "'a'" in document["errors"][0]["message"]
        # Nothing of the cluster's: not the object's cluster name, kind or manifest path.
        assert internal not in answer.text
        assert "Task.todo.dev" not in answer.text
        assert "spec." not in answer.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"count": 1%s, "schedule": {"every": "daily", "start": "2027-01-01T09:00:00"}}', "count"),
        (
            '{"schedule": {"every": "daily", "interval": 1%s, "start": "2027-01-01T09:00:00"}}',
            "schedule.interval",
        ),
        ('{"count": 1e999, "schedule": {"every": "daily", "start": "2027-01-01T09:00:00"}}', "count"),
        (
            '{"schedule": {"every": "daily", "start": "2027-01-01T09:00:00"},'
            ' "after": "9999-12-31T23:59:59Z"}',
            "after",
        ),
    ],
    ids=["count-5000-digits", "interval-5000-digits", "count-infinite", "after-year-9999"],
)
def test_an_over_large_number_in_a_preview_names_its_field(
    make_api: MakeApi, namespace: str, body: str, field: str
) -> None:
    api = make_api(namespace)
    content = body.replace("%s", "0" * 5000).encode()
    refused = api.as_user(ALICE).post(
        "/api/v1/schedules/preview", content=content, headers={"Content-Type": "application/json"}
    )
    assert _fields(_is_problem(refused, 422)) == [field]


def test_an_over_large_limit_names_its_field(make_api: MakeApi, namespace: str) -> None:
    api = make_api(namespace)
    refused = api.as_user(ALICE).get("/api/v1/tasks", params={"limit": str(10**30)})
    assert _fields(_is_problem(refused, 422)) == ["limit"]


# ---------------------------------------------------------------------- If-Match (RFC 9110 §13.1.1)


def test_if_match_compares_strong_entity_tags(make_api: MakeApi, namespace: str) -> None:
    api = make_api(namespace)
    alice = api.as_user(ALICE)
    created = alice.post("/api/v1/tasks", json={"name": "guarded", "title": "Guarded"})
    assert created.status_code == 201, created.text
    etag = created.headers["ETag"]

    def patch(if_match: str, title: str) -> Any:
        return alice.patch("/api/v1/tasks/guarded", json={"title": title}, headers={"If-Match": if_match})

    # A weak tag never matches If-Match, even when its opaque part is the current one.
    _is_problem(patch(f"W/{etag}", "weak"), 412)
    # A list matches when any of its strong tags does.
    listed = patch(f'"someone-else", {etag}', "listed")
    assert listed.status_code == 200, listed.text
    etag = listed.headers["ETag"]
    anything = patch("*", "any")
    assert anything.status_code == 200, anything.text
    etag = anything.headers["ETag"]
    # Not an entity-tag list: a bad request naming the header, not a failed precondition.
    for malformed in ("garbage", etag.strip('"'), f"{etag} {etag}", f"*, {etag}", '"open'):
        document = _is_problem(patch(malformed, "malformed"), 400)
        assert _fields(document) == ["If-Match"], malformed
    assert alice.get("/api/v1/tasks/guarded").json()["title"] == "any"
    _is_problem(alice.delete("/api/v1/tasks/guarded", headers={"If-Match": "W/" + etag}), 412)
    _is_problem(alice.delete("/api/v1/tasks/guarded", headers={"If-Match": "garbage"}), 400)
