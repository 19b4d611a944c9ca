"""The REST shim's pure parts: cursors, sort parsing, If-Match, problems, the write limiter, names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from todo_operator.api import cursors, names, preconditions, problems, ratelimit, services

SECRET = b"k" * 32


def test_a_cursor_round_trips_for_its_caller_and_query_only() -> None:
    position = cursors.Position(value="2026-01-01 00:00:00+00", key="5b7c")
    cursor = cursors.encode(position, secret=SECRET, user="a@x.io", digest="d1")
    assert cursors.decode(cursor, secret=SECRET, user="a@x.io", digest="d1") == position
    for user, digest, secret in (
        ("b@x.io", "d1", SECRET),
        ("a@x.io", "d2", SECRET),
        ("a@x.io", "d1", b"o" * 32),
    ):
        with pytest.raises(cursors.InvalidCursor):
            cursors.decode(cursor, secret=secret, user=user, digest=digest)


@pytest.mark.parametrize("cursor", ["", "!!", "a" * 2000, "AAAA", "eyJ2IjpudWxsfQ"])
def test_malformed_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(cursor, secret=SECRET, user="a@x.io", digest="d")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("due", ("due", False)),
        ("-priority", ("priority", True)),
        ("+title", ("title", False)),
        ("-next", ("next", True)),
    ],
)
def test_sort_parsing(text: str, expected: tuple[str, bool]) -> None:
    assert services.parse_sort(text) == expected


def test_unknown_sort_is_a_422_naming_the_field() -> None:
    with pytest.raises(problems.Problem) as caught:
        services.parse_sort("owner")
    assert caught.value.status == 422
    assert caught.value.errors[0].field == "sort"


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("*", None), ('"12"', ["12"]), ('W/"12", "13"', ["12", "13"]), ("12", ["12"])],
)
def test_if_match_parsing(header: str | None, expected: list[str] | None) -> None:
    assert preconditions.parse_if_match(header) == expected


def test_a_stale_if_match_is_412() -> None:
    assert preconditions.required_version('"7"', current="7") == "7"
    with pytest.raises(problems.Problem) as caught:
        preconditions.required_version('"6"', current="7")
    assert caught.value.status == 412


def test_problem_documents_name_each_field() -> None:
    problem = problems.from_validation_errors(
        [
            {"loc": ("body", "schedule", "interval"), "msg": "Value error, too big"},
            {"loc": ("query", "limit"), "msg": "bad"},
        ]
    )
    document = problem.document(instance="/api/v1/tasks")
    assert document.status == 422
    assert [(error.field, error.message) for error in document.errors] == [
        ("schedule.interval", "too big"),
        ("limit", "bad"),
    ]
    assert document.type.startswith(problems.TYPE_BASE)


def test_the_write_limiter_slides_and_says_when_to_retry() -> None:
    limiter = ratelimit.WriteLimiter(limit=2)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    limiter.check("a", now=start)
    limiter.check("a", now=start + timedelta(seconds=10))
    with pytest.raises(problems.Problem) as caught:
        limiter.check("a", now=start + timedelta(seconds=20))
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "40"
    limiter.check("b", now=start + timedelta(seconds=20))
    limiter.check("a", now=start + timedelta(seconds=61))


def test_names_are_per_user() -> None:
    alice = names.object_name(owner="alice@example.com", public="milk")
    assert alice != names.object_name(owner="bob@example.com", public="milk")
    assert names.public_name(owner="alice@example.com", name=alice) == "milk"
    assert names.public_name(owner="bob@example.com", name=alice) == alice


async def test_a_database_outage_leaves_next_occurrence_out_instead_of_failing_the_answer() -> None:
    # The answer of a write that the API server already took must not turn into a 503.
    from psycopg_pool import AsyncConnectionPool

    from todo_operator.api.auth import User
    from todo_operator.api.settings import ApiSettings
    from todo_operator.clock import ManualClock

    down: AsyncConnectionPool = AsyncConnectionPool("postgresql://nobody@127.0.0.1:1/none", open=False)
    settings = ApiSettings(namespace="team-a", jwt_secret="s" * 32)
    tasks = services.Tasks(
        objects=services.Objects(kube=None, settings=settings),  # type: ignore[arg-type]  # not used here
        pool=down,
        clock=ManualClock(datetime(2026, 12, 1, tzinfo=UTC)),
        pager=services.Pager(secret=SECRET),
        settings=settings,
    )
    alice = User(id="alice@example.com", is_admin=False)
    due = "2026-12-02T09:00:00Z"
    occurrence = {
        "metadata": {
            "name": names.object_name(owner=alice.id, public="standup-1"),
            "resourceVersion": "7",
            "ownerReferences": [
                {"kind": "RecurringTask", "name": "standup", "uid": "0c0ffee0-0000-4000-8000-000000000001"}
            ],
        },
        "spec": {"title": "Standup", "owner": alice.id, "dueAt": due},
    }
    shown = await tasks._public(occurrence, user=alice)
    assert (shown.title, shown.next_occurrence) == ("Standup", None)
    one_off = {**occurrence, "metadata": {"name": occurrence["metadata"]["name"], "resourceVersion": "8"}}
    assert (await tasks._public(one_off, user=alice)).next_occurrence == datetime(2026, 12, 2, 9, tzinfo=UTC)
