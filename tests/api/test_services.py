"""The API's services over the shared fakes (tests/fakes.py): no PostgreSQL, no emulator, no HTTP.

They say what they refuse in api/errors.py's terms; the app says it as a
problem (test_api_pure.py). Here: names are the caller's, writes carry
their preconditions, and another user's object is not found.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.fakes import FakeKube
from todo_operator.api import errors, names, services
from todo_operator.api import models as m
from todo_operator.api.auth import User
from todo_operator.api.settings import ApiSettings
from todo_operator.clock import ManualClock
from todo_operator.schedule_engine import ScheduleEngine

ALICE = User(id="alice@example.com", is_admin=False)
BOB = User(id="bob@example.com", is_admin=False)
SETTINGS = ApiSettings(namespace="team-a", jwt_secret="s" * 32)


class Api:
    def __init__(self) -> None:
        self.kube = FakeKube()
        objects = services.Objects(kube=self.kube, settings=SETTINGS)  # type: ignore[arg-type]  # the fake
        pager = services.Pager(secret=b"k" * 32)
        clock = ManualClock(datetime(2026, 12, 7, 8, tzinfo=UTC))
        unused: services.tasks.queries.Queries = None  # type: ignore[assignment]  # these paths read no list
        self.tasks = services.Tasks(
            objects=objects, reads=unused, clock=clock, pager=pager, settings=SETTINGS
        )
        self.recurring = services.RecurringTasks(
            objects=objects,
            reads=unused,
            clock=clock,
            pager=pager,
            settings=SETTINGS,
            engine=ScheduleEngine(),
        )


@pytest.fixture
def api() -> Api:
    return Api()


def test_a_task_is_made_under_the_callers_name_with_the_caller_as_owner(api: Api) -> None:
    stored = asyncio.run(api.tasks.create(user=ALICE, body=m.TaskCreate(name="rent", title="Pay rent")))
    (made,) = api.kube.created
    assert made["metadata"]["name"] == names.object_name(owner=ALICE.id, public="rent")
    assert made["metadata"]["namespace"] == "team-a"
    assert made["spec"]["owner"] == ALICE.id
    assert (stored.value.name, stored.etag) == ("rent", f'"{made["metadata"]["uid"]}.1"')

    with pytest.raises(errors.AlreadyExists, match="you already have a task named 'rent'"):
        asyncio.run(api.tasks.create(user=ALICE, body=m.TaskCreate(name="rent", title="Pay rent")))


def test_a_write_with_an_old_etag_is_stale_and_with_the_current_one_goes_through(api: Api) -> None:
    first = asyncio.run(api.tasks.create(user=ALICE, body=m.TaskCreate(name="rent", title="Pay rent")))
    second = asyncio.run(
        api.tasks.update(
            user=ALICE, name="rent", body=m.TaskUpdate(title="Pay the rent"), if_match=first.etag
        )
    )
    assert second.value.title == "Pay the rent"
    assert second.etag != first.etag
    with pytest.raises(errors.Stale):
        asyncio.run(
            api.tasks.update(user=ALICE, name="rent", body=m.TaskUpdate(title="x"), if_match=first.etag)
        )
    assert (
        api.kube.objects["Task", "team-a", names.object_name(owner=ALICE.id, public="rent")]["spec"]["title"]
        == "Pay the rent"
    )


def test_another_users_object_is_not_found(api: Api) -> None:
    schedule = {"every": "daily", "start": "2026-12-08T09:00:00", "timeZone": "UTC"}
    body = m.RecurringTaskCreate(
        name="plants", schedule=schedule, task_template={"title": "Water the plants"}
    )
    asyncio.run(api.recurring.create(user=ALICE, body=body))
    with pytest.raises(errors.NotFound, match="you have no recurring task named 'plants'"):
        asyncio.run(api.recurring.get(user=BOB, name="plants"))
    assert asyncio.run(api.recurring.get(user=ALICE, name="plants")).value.name == "plants"


def test_a_schedule_the_engine_refuses_is_refused_before_the_api_server_sees_it(api: Api) -> None:
    schedule = {"rrule": "FREQ=DAILY;BYDAY=XX", "start": "2026-12-08T09:00:00", "timeZone": "UTC"}
    body = m.RecurringTaskCreate(
        name="plants", schedule=schedule, task_template={"title": "Water the plants"}
    )
    with pytest.raises(errors.InvalidInput) as refused:
        asyncio.run(api.recurring.create(user=ALICE, body=body))
    assert [field for field, _ in refused.value.fields] == ["schedule"]
    assert api.kube.created == []
