"""What ``kubectl todo`` shows, from literal objects, instants and zones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from todo_operator.plugin import views

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
ALICE = "alice@example.com"


def task(name: str, *, due: datetime | None = None, owner: str = ALICE, **spec: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"title": name.title(), "owner": owner, **spec}
    if due is not None:
        fields["dueAt"] = due.isoformat()
    return {"metadata": {"name": name}, "spec": fields}


def test_when_is_local_and_relative_as_kubectl_ages_are() -> None:
    assert views.when(NOW + timedelta(hours=13), now=NOW, zone=BERLIN) == "2026-12-04 23:00 (in 13h)"
    assert views.when(NOW - timedelta(days=3), now=NOW, zone=BERLIN) == "2026-12-01 10:00 (3d ago)"
    assert views.when(NOW + timedelta(seconds=30), now=NOW, zone=UTC) == "2026-12-04 09:00 (now)"
    assert views.when(NOW + timedelta(minutes=90), now=NOW, zone=UTC) == "2026-12-04 10:30 (in 1h)"
    assert views.when(None, now=NOW, zone=UTC) == "-"
    # At the calendar's end another zone's wall clock does not exist: shown as the instant.
    end = datetime(9999, 12, 31, 23, 30, tzinfo=UTC)
    assert views.when(end, now=NOW, zone=BERLIN) == "9999-12-31T23:30:00+00:00"
    chosen = views.select_tasks([task("last", due=end)], owner=ALICE, selection="today", now=NOW, zone=BERLIN)
    assert chosen == []
    first = datetime(1, 1, 1, 0, 0, tzinfo=BERLIN)  # before year 1 in UTC
    ordered = views.select_tasks(
        [task("last", due=end), task("first", due=first)], owner=ALICE, selection="all", now=NOW, zone=UTC
    )
    assert [body["metadata"]["name"] for body in ordered] == ["first", "last"]
    assert views.when(first, now=NOW, zone=UTC) == first.isoformat()


def test_selections_are_the_owners_tasks_soonest_due_first() -> None:
    bodies = [
        task("later", due=NOW + timedelta(days=2)),
        task("undated"),
        task("tonight", due=NOW + timedelta(hours=13)),  # 23:00 in Berlin: still today there
        task("late", due=NOW - timedelta(hours=1)),
        task("done", due=NOW - timedelta(hours=2), completed=True),
        task("bobs", due=NOW, owner="bob@example.com"),
        task("broken", title=""),  # a spec the operator refuses: listed, as Invalid
    ]

    def picked(selection: views.Selection, owner: str | None = ALICE) -> list[str]:
        chosen = views.select_tasks(bodies, owner=owner, selection=selection, now=NOW, zone=BERLIN)
        return [body["metadata"]["name"] for body in chosen]

    assert picked("open") == ["late", "tonight", "later", "broken", "undated"]
    assert picked("overdue") == ["late"]
    assert picked("today") == ["late", "tonight"]
    assert picked("all") == ["done", "late", "tonight", "later", "broken", "undated"]
    assert "bobs" in picked("all", owner=None)
    assert views.phase_of(bodies[-1], now=NOW) == "Invalid"


def test_the_table_is_laid_out_as_kubectl_get_and_marks_overdue() -> None:
    bodies = [
        task("late", due=NOW - timedelta(hours=1), priority="urgent", tags=["home"]),
        {**task("plants-20261205t0900", due=NOW + timedelta(days=1)), "status": {"recurringTask": "plants"}},
    ]
    text = views.table(views.task_rows(bodies, now=NOW, zone=UTC, wide=True))
    assert text.splitlines() == [
        "NAME                   TITLE                  DUE                         PHASE       PRIORITY"
        "   SERIES   TAGS   OWNER",
        "late                   Late                   2026-12-04 08:00 (1h ago)   Overdue !   urgent  "
        "   -        home   alice@example.com",
        "plants-20261205t0900   Plants-20261205T0900   2026-12-05 09:00 (in 24h)   Open        medium  "
        "   plants   -      alice@example.com",
    ]
    assert views.table([["NAME"]]) == ""
    across = views.task_rows(
        [{**bodies[0], "metadata": {"name": "late", "namespace": "team-a"}}],
        now=NOW,
        zone=UTC,
        wide=False,
        namespaces=True,
    )
    assert [row[:2] for row in across] == [["NAMESPACE", "NAME"], ["team-a", "late"]]


def test_next_orders_active_series_by_their_next_due_time() -> None:
    def series(name: str, phase: str, due: datetime | None) -> dict[str, Any]:
        status = {"phase": phase, "currentTask": f"{name}-1"}
        if due is not None:
            status["nextDueAt"] = due.isoformat()
        return {"metadata": {"name": name}, "spec": {"taskTemplate": {"title": name}}, "status": status}

    rows = views.series_rows(
        [
            series("weekly", "Active", NOW + timedelta(days=3)),
            series("ended", "Ended", None),
            series("daily", "Active", NOW + timedelta(hours=2)),
            series("paused", "Suspended", NOW + timedelta(hours=1)),
        ],
        now=NOW,
        zone=UTC,
    )
    assert [row[0] for row in rows] == ["SERIES", "daily", "weekly", "ended", "paused"]


def test_documents_are_kubectl_lists() -> None:
    bodies = [task("a"), task("b")]
    for output, load in (("yaml", yaml.safe_load), ("json", json.loads)):
        listed = load(views.document(bodies, output=output))  # type: ignore[arg-type, operator]
        assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
        assert [item["metadata"]["name"] for item in listed["items"]] == ["a", "b"]
    assert views.names(bodies, resource="task.todo.dev") == "task.todo.dev/a\ntask.todo.dev/b"
