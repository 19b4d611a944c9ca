"""Recurring tasks through the REST shim, and the seed's list features over their occurrences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.api import harness
from tests.api.harness import ALICE, BOB, Api, listed, wait_for, wait_listed
from tests.kubeclient import KubeClient
from todo_operator.api import names

# The harness fixtures, offered to this module.
api = harness.api
make_api = harness.make_api


def tomorrow_at_nine() -> datetime:
    return (datetime.now(tz=UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def recurring(name: str, *, title: str, rrule: str | None = None, **template: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"start": tomorrow_at_nine().strftime("%Y-%m-%dT%H:%M:%S")}
    schedule.update({"rrule": rrule} if rrule else {"every": "daily"})
    return {"name": name, "schedule": schedule, "taskTemplate": {"title": title, **template}}


def current_task(client: Any, name: str, occurrences: int) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        f"{name}: occurrence {occurrences}",
        lambda: (
            (body := client.get(f"/api/v1/recurring-tasks/{name}").json()).get("occurrences") == occurrences
            and body.get("currentTask")
            and body
        ),
    )
    return found


def test_completing_an_occurrence_through_the_api_opens_the_next(api: Api) -> None:
    alice = api.as_user(ALICE)
    created = alice.post("/api/v1/recurring-tasks", json=recurring("plants", title="Water the plants"))
    assert created.status_code == 201, created.text
    assert created.json()["taskTemplate"]["owner"] == ALICE
    first = current_task(alice, "plants", 1)["currentTask"]
    assert first.startswith("plants-")
    wait_listed(alice, {first})
    assert alice.post(f"/api/v1/tasks/{first}/complete").status_code == 200
    series = current_task(alice, "plants", 2)
    second = series["currentTask"]
    assert second != first
    # An occurrence's next occurrence is its series' next due, read one by one as in the list.
    got = alice.get(f"/api/v1/tasks/{second}").json()
    assert got["nextOccurrence"] == series["nextDueAt"] == got["dueAt"]
    listed = wait_for(
        "listed", lambda: [t for t in alice.get("/api/v1/tasks").json()["items"] if t["name"] == second]
    )
    assert listed[0]["nextOccurrence"] == got["nextOccurrence"]
    occurrences = wait_for(
        "two recorded occurrences",
        lambda: (
            len((body := alice.get("/api/v1/recurring-tasks/plants/occurrences").json())["current"]) == 1
            and len(body["past"]) == 1
            and body
        ),
    )
    # Split by what happened: the completed one is past, the open one (due ahead) current.
    assert [item["name"] for item in occurrences["past"]] == [first]
    assert occurrences["past"][0]["completed"] is True
    assert [item["name"] for item in occurrences["current"]] == [second]
    assert len(occurrences["upcoming"]) == 10
    assert occurrences["upcoming"][0] > occurrences["current"][0]["dueAt"]
    # One form for every instant: UTC, "Z" (the schedule runs in another zone).
    instants = [occurrences["current"][0]["dueAt"], *occurrences["upcoming"], got["dueAt"]]
    assert all(instant.endswith("Z") for instant in instants), instants

    # Each answer shows the state it caused, before the operator has written its status.
    suspended = alice.post("/api/v1/recurring-tasks/plants/suspend")
    assert suspended.status_code == 200
    assert (suspended.json()["suspend"], suspended.json()["phase"]) == (True, "Suspended")
    resumed = alice.post("/api/v1/recurring-tasks/plants/resume").json()
    assert (resumed["suspend"], resumed["phase"]) == (False, "Active")
    patched = alice.patch(
        "/api/v1/recurring-tasks/plants",
        json={"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "start": "2030-01-07T09:00:00"}},
    )
    assert patched.status_code == 200, patched.text
    assert "every" not in patched.json()["schedule"]
    assert (
        wait_for("listed", lambda: alice.get("/api/v1/recurring-tasks").json()["items"])[0]["name"]
        == "plants"
    )
    assert alice.delete("/api/v1/recurring-tasks/plants").status_code == 204
    assert alice.get("/api/v1/recurring-tasks/plants").status_code == 404


def test_seed_features_over_recurring_instances(api: Api) -> None:
    alice = api.as_user(ALICE)
    assert (
        alice.post(
            "/api/v1/recurring-tasks",
            json=recurring(
                "review", title="Review", rrule="FREQ=WEEKLY;BYDAY=FR", priority="high", tags=["work"]
            ),
        ).status_code
        == 201
    )
    assert (
        alice.post(
            "/api/v1/recurring-tasks", json=recurring("plants", title="Water", priority="low", tags=["home"])
        ).status_code
        == 201
    )
    soon = (datetime.now(tz=UTC) + timedelta(hours=5)).isoformat()
    assert (
        alice.post(
            "/api/v1/tasks",
            json={"name": "call", "title": "Call mum", "tags": ["home", "family"], "dueAt": soon},
        ).status_code
        == 201
    )
    review = current_task(alice, "review", 1)["currentTask"]
    plants = current_task(alice, "plants", 1)["currentTask"]
    wait_listed(alice, {review, plants, "call"})

    def names(**params: Any) -> list[str]:
        response = alice.get("/api/v1/tasks", params=params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    assert names(priority="high") == [review]
    assert names(tag="home", recurring="true") == [plants]
    assert set(names(tag=["home", "work"], tagsMatch="any")) == {review, plants, "call"}
    assert names(tag=["home", "family"]) == ["call"]
    assert names(q="weekly") == [review]  # the schedule's text
    assert names(q="mum") == ["call"]
    in_a_year = (datetime.now(tz=UTC) + timedelta(days=366)).isoformat()
    assert set(names(dueBefore=in_a_year, recurring="true")) == {review, plants}  # next occurrences
    by_next = names(sort="next")
    assert by_next[0] == "call"
    assert set(by_next) == {review, plants, "call"}
    assert names(sort="-priority")[0] == review
    assert names(status="overdue") == []


def test_schedule_preview_and_its_errors(api: Api) -> None:
    alice = api.as_user(ALICE)
    preview = alice.post(
        "/api/v1/schedules/preview",
        json={
            "schedule": {
                "rrule": "FREQ=MONTHLY;BYDAY=-1FR",
                "start": "2027-01-01T16:00:00",
                "timeZone": "Europe/Berlin",
            },
            "count": 3,
            "after": "2027-01-01T00:00:00Z",
        },
    )
    assert preview.status_code == 200, preview.text
    # 16:00 in Berlin, said as every instant of the API is: in UTC, with "Z".
    assert preview.json()["occurrences"] == [
        "2027-01-29T15:00:00Z",
        "2027-02-26T15:00:00Z",
        "2027-03-26T15:00:00Z",
    ]
    never = alice.post(
        "/api/v1/schedules/preview",
        json={"schedule": {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "start": "2027-01-01T00:00:00"}},
    )
    assert never.status_code == 422
    assert never.json()["errors"][0]["field"] == "schedule"
    assert "30" in never.json()["detail"] or "never" in never.json()["detail"].lower()
    too_long = alice.post(
        "/api/v1/schedules/preview",
        json={"schedule": {"rrule": "FREQ=DAILY;" + "BYHOUR=1;" * 100, "start": "2027-01-01T00:00:00"}},
    )
    assert too_long.status_code == 422
    assert (
        alice.post(
            "/api/v1/schedules/preview",
            json={"schedule": {"every": "daily", "start": "2027-01-01T00:00:00"}, "count": 5000},
        ).status_code
        == 422
    )
    bad_zone = alice.post(
        "/api/v1/recurring-tasks",
        json={
            "schedule": {"every": "daily", "start": "2027-01-01T00:00:00", "timeZone": "Mars/Olympus"},
            "taskTemplate": {"title": "x"},
        },
    )
    assert bad_zone.status_code == 422
    assert bad_zone.json()["errors"][0]["field"] == "schedule.timeZone"


def test_a_name_made_with_kubectl_and_one_made_through_the_api_never_show_twice(
    api: Api, kube: KubeClient, namespace: str
) -> None:
    """The issue's case: ``water-plants`` from kubectl and from the API listed twice, GET finding one."""
    alice = api.as_user(ALICE)

    def applied(name: str, title: str) -> None:
        manifest = recurring(name, title=title)
        spec = {
            "schedule": manifest["schedule"],
            "taskTemplate": {**manifest["taskTemplate"], "owner": ALICE},
        }
        kube.create(
            "recurringtasks",
            namespace,
            {
                "apiVersion": "todo.dev/v1alpha1",
                "kind": "RecurringTask",
                "metadata": {"name": name},
                "spec": spec,
            },
        )

    # Made with kubectl first: the API refuses the name instead of hiding the kubectl-made series.
    applied("water-plants", "From Git")
    wait_listed(alice, {"water-plants"}, "/api/v1/recurring-tasks")
    refused = alice.post("/api/v1/recurring-tasks", json=recurring("water-plants", title="From the API"))
    assert refused.status_code == 409, refused.text
    assert (
        refused.json()["detail"]
        == "you already have a recurring task named 'water-plants' (made with kubectl)"
    )
    assert alice.get("/api/v1/recurring-tasks/water-plants").json()["taskTemplate"]["title"] == "From Git"

    # Made through the API first, then kubectl applies the same name: one ``herbs`` in the list, the one
    # GET finds; the kubectl-made series comes back into view once the API-made one is deleted.
    assert (
        alice.post("/api/v1/recurring-tasks", json=recurring("herbs", title="From the API")).status_code
        == 201
    )
    applied("herbs", "From Git")
    kube.wait_for_status(
        "recurringtasks", namespace, "herbs", lambda status: bool(status.get("phase")), what="phase"
    )
    listed = [
        item for item in wait_listed(alice, {"herbs"}, "/api/v1/recurring-tasks") if item["name"] == "herbs"
    ]
    assert [item["taskTemplate"]["title"] for item in listed] == ["From the API"]
    assert alice.get("/api/v1/recurring-tasks/herbs").json()["taskTemplate"]["title"] == "From the API"
    assert alice.delete("/api/v1/recurring-tasks/herbs").status_code == 204
    back = wait_for(
        "the kubectl-made herbs listed",
        lambda: (
            [
                item["taskTemplate"]["title"]
                for item in alice.get("/api/v1/recurring-tasks").json()["items"]
                if item["name"] == "herbs"
            ]
            == ["From Git"]
        ),
    )
    assert back
    assert alice.get("/api/v1/recurring-tasks/herbs").json()["taskTemplate"]["title"] == "From Git"


def test_an_rdate_is_an_occurrence_through_the_api_and_in_the_cluster(
    api: Api, kube: KubeClient, namespace: str
) -> None:
    """RDATE end to end: the preview shows it between the rule's times, the object keeps it, and the
    series opens it in its turn: the 09:00 occurrence, then the 11:00 rdate, then 09:00 next day."""
    alice = api.as_user(ALICE)
    nine = tomorrow_at_nine()
    eleven = nine + timedelta(hours=2)
    schedule = {
        "every": "daily",
        "start": nine.strftime("%Y-%m-%dT%H:%M:%S"),
        "rdates": [eleven.strftime("%Y-%m-%dT%H:%M:%S")],
    }
    preview = alice.post("/api/v1/schedules/preview", json={"schedule": schedule, "count": 3})
    assert preview.status_code == 200, preview.text
    day_after = nine + timedelta(days=1)
    assert preview.json()["occurrences"] == [
        f"{instant:%Y-%m-%dT%H:%M:%S}Z" for instant in (nine, eleven, day_after)
    ]
    duplicate = alice.post(
        "/api/v1/schedules/preview", json={"schedule": {**schedule, "rdates": [schedule["rdates"][0]] * 2}}
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["field"] == "schedule.rdates"
    early = alice.post(
        "/api/v1/schedules/preview",
        json={"schedule": {**schedule, "rdates": [(nine - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")]}},
    )
    assert early.status_code == 422
    assert "is before the start" in early.json()["detail"]

    created = alice.post(
        "/api/v1/recurring-tasks",
        json={"name": "extra-round", "schedule": schedule, "taskTemplate": {"title": "Extra round"}},
    )
    assert created.status_code == 201, created.text
    assert created.json()["schedule"]["rdates"] == schedule["rdates"]
    object_name = names.object_name(owner=ALICE, public="extra-round")
    assert (
        kube.get("recurringtasks", namespace, object_name)["spec"]["schedule"]["rdates"] == schedule["rdates"]
    )
    due = []
    for number in (1, 2, 3):
        current = current_task(alice, "extra-round", number)["currentTask"]
        due.append(alice.get(f"/api/v1/tasks/{current}").json()["dueAt"])
        assert alice.post(f"/api/v1/tasks/{current}/complete").status_code == 200
    assert due == [f"{instant:%Y-%m-%dT%H:%M:%S}Z" for instant in (nine, eleven, day_after)]


def test_skipping_the_current_occurrence_moves_the_series_on_and_keeps_it_as_skipped(
    api: Api, namespace: str, operator_database_url: str
) -> None:
    """``POST /tasks/{name}/skip``: the series opens its next slot, nothing is recorded as done,
    the skipped occurrence's reminder is cancelled, and history (the task, the series'
    occurrences, ``status=skipped``) shows it as Skipped. Anything else is refused, changing nothing."""
    alice = api.as_user(ALICE)
    created = alice.post(
        "/api/v1/recurring-tasks",
        json=recurring("plants", title="Water the plants", reminders=[{"before": "1h"}]),
    )
    assert created.status_code == 201, created.text
    first = current_task(alice, "plants", 1)["currentTask"]
    reminder = wait_for(
        "the first occurrence's reminder",
        lambda: [r for r in listed(alice, "/api/v1/reminders") if r["task"] == first],
    )[0]["name"]
    etag = alice.get(f"/api/v1/tasks/{first}").headers["ETag"]

    stale = alice.post(f"/api/v1/tasks/{first}/skip", headers={"If-Match": '"0.0"'})
    assert stale.status_code == 412, stale.text
    skipped = alice.post(f"/api/v1/tasks/{first}/skip", headers={"If-Match": etag})
    assert skipped.status_code == 200, skipped.text
    assert (skipped.json()["phase"], skipped.json()["completed"], skipped.json()["live"]) == (
        "Skipped",
        False,
        False,
    )

    series = current_task(alice, "plants", 2)
    assert series["currentTask"] != first
    assert series["nextDueAt"] == f"{tomorrow_at_nine() + timedelta(days=1):%Y-%m-%dT%H:%M:%S}Z"
    assert series.get("lastCompletedAt") is None
    history = wait_for(
        "the skip recorded",
        lambda: (body := alice.get(f"/api/v1/tasks/{first}")).status_code == 200 and body.json(),
    )
    assert (history["phase"], history["completed"], history["live"]) == ("Skipped", False, False)
    assert [t["name"] for t in listed(alice, status="skipped")] == [first]
    assert first not in {t["name"] for t in listed(alice, status="open")}
    assert first not in {t["name"] for t in listed(alice, status="completed")}
    occurrences = alice.get("/api/v1/recurring-tasks/plants/occurrences").json()
    assert [(o["name"], o["phase"], o["completed"]) for o in occurrences["past"]] == [
        (first, "Skipped", False)
    ]
    assert [o["name"] for o in occurrences["current"]] == [series["currentTask"]]
    with psycopg.connect(operator_database_url, autocommit=True) as db:
        wait_for(
            "its reminder cancelled",
            lambda: db.execute(
                "SELECT 1 FROM reminders WHERE namespace = %s AND name = %s AND phase = 'Cancelled'",
                (namespace, names.object_name(owner=ALICE, public=reminder)),
            ).fetchone(),
        )

    # History cannot be skipped again, and only the current occurrence of a series can be skipped.
    again = alice.post(f"/api/v1/tasks/{first}/skip")
    assert again.status_code == 409, again.text
    second = series["currentTask"]
    assert alice.post(f"/api/v1/tasks/{second}/complete").status_code == 200
    done = alice.post(f"/api/v1/tasks/{second}/skip")
    assert done.status_code == 409
    assert "is completed" in done.json()["detail"]
    one_off = alice.post("/api/v1/tasks", json={"name": "call-bob", "title": "Call Bob"})
    assert one_off.status_code == 201
    refused = alice.post("/api/v1/tasks/call-bob/skip")
    assert refused.status_code == 409
    assert "not an occurrence of a recurring task" in refused.json()["detail"]
    assert alice.get("/api/v1/tasks/call-bob").json()["live"] is True
    assert alice.post("/api/v1/tasks/nothing-here/skip").status_code == 404
    bob = api.as_user(BOB)
    third = current_task(alice, "plants", 3)["currentTask"]
    assert bob.post(f"/api/v1/tasks/{third}/skip").status_code == 404
    assert alice.get(f"/api/v1/tasks/{third}").json()["live"] is True
