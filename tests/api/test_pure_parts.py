"""The REST shim's pure parts: cursors, sort parsing, If-Match, problems, the write limiter, names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from todo_operator import kube
from todo_operator.api import (
    bodies,
    cursors,
    errors,
    names,
    preconditions,
    problems,
    ratelimit,
    services,
    translation,
)

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
    with pytest.raises(errors.InvalidInput) as caught:
        services.parse_sort("owner")
    answered = translation.translate(caught.value)
    assert answered.status == 422
    assert answered.errors[0].field == "sort"


Tag = preconditions.EntityTag


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("*", preconditions.ANY),
        (" * ", preconditions.ANY),
        ('"12"', (Tag("12"),)),
        ('W/"12", "13"', (Tag("12", weak=True), Tag("13"))),
        ('"a" ,, "b",', (Tag("a"), Tag("b"))),  # empty list elements are allowed (RFC 9110 §5.6.1.2)
        ('""', (Tag(""),)),
        ('"a,b", "c"', (Tag("a,b"), Tag("c"))),  # a comma is an etagc: the list is not split on it
        ('"u-1.2/\\x\x80"', (Tag("u-1.2/\\x\x80"),)),  # etagc: %x21 / %x23-7E / obs-text
        ("", ()),  # an empty list: nothing matches
    ],
)
def test_if_match_is_parsed_as_rfc_9110_writes_it(
    header: str, expected: str | tuple[preconditions.EntityTag, ...]
) -> None:
    assert preconditions.parse_entity_tags(header, header_name="If-Match") == expected


@pytest.mark.parametrize(
    "header",
    ["12", 'w/"12"', 'W/ "12"', '"a"b', '"a" "b"', '"a', 'a"', '"a b"', '"a"b"', '*, "a"', "**", "W/*"],
)
def test_a_malformed_if_match_is_a_400_naming_the_header(header: str) -> None:
    with pytest.raises(errors.MalformedHeader) as caught:
        preconditions.parse_entity_tags(header, header_name="If-Match")
    answered = translation.translate(caught.value)
    assert (answered.status, answered.kind) == (400, "malformed-header")
    assert [error.field for error in answered.errors] == ["If-Match"]


@pytest.mark.parametrize(
    ("header", "holds"),
    [
        (None, True),
        ("*", True),
        ('"7"', True),
        ('"6", "7"', True),
        ('W/"7"', False),  # weak tags never match If-Match (strong comparison, §13.1.1)
        ('W/"7", "6"', False),
        ('"6"', False),
        ("", False),
    ],
)
def test_if_match_uses_the_strong_comparison(header: str | None, holds: bool) -> None:
    if holds:
        preconditions.required_version(header, current="7")
    else:
        with pytest.raises(errors.Stale) as caught:
            preconditions.required_version(header, current="7")
        assert translation.translate(caught.value).status == 412


def test_a_stale_if_match_is_412() -> None:
    assert preconditions.required_version('"7"', current="7") == "7"
    assert preconditions.required_version("*", current="7") is None  # any current representation
    with pytest.raises(errors.Stale) as caught:
        preconditions.required_version('"6"', current="7")
    answered = translation.translate(caught.value)
    assert (answered.status, answered.kind) == (412, "precondition-failed")


@pytest.mark.parametrize(
    ("content_type", "has_body", "accepted"),
    [
        ("application/json", True, True),
        ("Application/JSON; charset=UTF-8", True, True),
        ('application/json;charset="utf-8"', True, True),
        ("application/json; charset=latin-1", True, False),
        ("application/merge-patch+json", True, False),
        ("text/plain", True, False),
        ("text/plain", False, False),  # a wrong type is wrong even with nothing in it
        ("", True, False),
        (None, True, False),
        (None, False, True),  # no body, nothing to type: the route says what is missing
        ("json", True, False),
    ],
)
def test_request_media_types(content_type: str | None, has_body: bool, accepted: bool) -> None:
    def check() -> None:
        bodies.check_media_type(
            content_type, has_body=has_body, accepted=("application/json",), method="POST"
        )

    if accepted:
        check()
    else:
        with pytest.raises(problems.Problem) as caught:
            check()
        assert caught.value.status == 415
        assert caught.value.headers == {"Accept-Post": "application/json"}


def test_the_api_servers_refusals_are_told_in_the_requests_terms() -> None:
    # What the API server answers for a duplicate in a list-type set (the models refuse those
    # first now), and for anything else it refuses: never the object's cluster name or manifest path.
    internal = names.object_name(owner="alice@example.com", public="rent")
    invalid = kube.Invalid(
        f'RecurringTask.todo.dev "{internal}" is invalid: spec.taskTemplate.tags[1]: Duplicate value: "a"',
        causes=[("spec.taskTemplate.tags[1]", 'Duplicate value: "a"')],
    )
    problem = translation.translate(invalid)
    assert (problem.status, problem.detail) == (422, 'taskTemplate.tags.1: Duplicate value: "a"')
    assert [(e.field, e.message) for e in problem.errors] == [("taskTemplate.tags.1", 'Duplicate value: "a"')]
    without_causes = translation.translate(kube.Invalid(f'Task.todo.dev "{internal}" is invalid', causes=[]))
    assert without_causes.detail == 'Task.todo.dev "rent" is invalid'
    forbidden = translation.translate(
        kube.KubeError(f'tasks.todo.dev "{internal}" is forbidden: denied', code=403, reason="Forbidden")
    )
    assert (forbidden.status, internal in forbidden.detail) == (403, False)
    assert '"rent"' in forbidden.detail


def test_dapr_deliveries_need_a_token_or_the_insecure_setting_not_both() -> None:
    from pydantic import ValidationError

    from todo_operator.api.settings import ApiSettings

    secret = "s" * 32
    assert ApiSettings(jwt_secret=secret).dapr_insecure_allow_unauthenticated is False
    with pytest.raises(ValidationError, match="not both"):
        ApiSettings(jwt_secret=secret, dapr_app_token="t" * 32, dapr_insecure_allow_unauthenticated=True)
    with pytest.raises(ValidationError, match="TODO_API_DAPR_APP_TOKEN"):
        ApiSettings(jwt_secret=secret, dapr_app_token="")


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
    from todo_operator.store import queries

    down: AsyncConnectionPool = AsyncConnectionPool("postgresql://nobody@127.0.0.1:1/none", open=False)
    settings = ApiSettings(namespace="team-a", jwt_secret="s" * 32)
    tasks = services.Tasks(
        objects=services.Objects(kube=None, settings=settings),  # type: ignore[arg-type]  # not used here
        reads=queries.Queries(down),
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
                {  # as the operator makes an occurrence: its series is the controller
                    "kind": "RecurringTask",
                    "name": "standup",
                    "uid": "0c0ffee0-0000-4000-8000-000000000001",
                    "controller": True,
                }
            ],
        },
        "spec": {"title": "Standup", "owner": alice.id, "dueAt": due},
    }
    shown = await tasks._public(occurrence, user=alice)
    assert (shown.title, shown.next_occurrence) == ("Standup", None)
    one_off = {**occurrence, "metadata": {"name": occurrence["metadata"]["name"], "resourceVersion": "8"}}
    assert (await tasks._public(one_off, user=alice)).next_occurrence == datetime(2026, 12, 2, 9, tzinfo=UTC)


def _subclasses(cls: type[errors.Refused]) -> set[type[errors.Refused]]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def test_every_refusal_of_the_services_has_its_problem() -> None:
    # Services say what they refuse without HTTP; the edge must know how to answer each.
    assert _subclasses(errors.Refused) <= set(translation._REFUSALS)
    schedule = translation.translate(errors.InvalidSchedule.on("schedule", "no such weekday"))
    assert (schedule.status, schedule.kind, schedule.detail) == (422, "invalid-schedule", "no such weekday")
    assert [(error.field, error.message) for error in schedule.errors] == [("schedule", "no such weekday")]
    missing = translation.translate(errors.NotFound("task", "rent"))
    assert (missing.status, missing.kind, missing.detail) == (
        404,
        "not-found",
        "you have no task named 'rent'",
    )
