"""One name, one row in a user's lists: the REST lists agree with what GET by that name finds.

A user can hold a kubectl-made ``water`` and an API-made ``<prefix>water`` at
once (kubectl does not know the API's prefix). Both read as ``water`` through
the API, and GET resolves a live object before history, and the API-made one
before the kubectl-made one (``names.candidates``). The lists, read from a
real PostgreSQL here, leave out exactly the rows GET would not find.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from psycopg_pool import AsyncConnectionPool

from todo_operator.api import names
from todo_operator.domain.events import Event
from todo_operator.store import queries
from todo_operator.store.records import Records, RecurringTaskWrite, TaskWrite

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NAMESPACE = "team-names"
ALICE = "alice@example.com"
BOB = "bob@example.com"


@dataclasses.dataclass
class Store:
    records: Records
    reads: queries.Queries
    owner: str  # a fresh owner per test: rows of other tests never show


@pytest.fixture
def store(pool: AsyncConnectionPool[Any]) -> Store:
    return Store(records=Records(pool), reads=queries.Queries(pool), owner=f"{uuid.uuid4().hex[:8]}-{ALICE}")


History = Literal["completed", "skipped"]


def _task(
    store: Store, name: str, *, history: bool = False, owner: str | None = None, kind: History = "completed"
) -> TaskWrite:
    """A live open task, or (``history``) an occurrence whose object went: pruned once completed,
    or deleted while current (``kind="skipped"``)."""
    completed = history and kind == "completed"
    return TaskWrite(
        uid=str(uuid.uuid4()),
        namespace=NAMESPACE,
        name=name,
        owner=owner or store.owner,
        title=name,
        description="",
        priority="medium",
        tags=[],
        due_at=NOW,
        completed=completed,
        completed_at=NOW if completed else None,
        phase="Completed" if completed else "Open",
        recurring_task_uid=str(uuid.uuid4()) if history else None,
        occurrence=1 if history else None,
        recurring_pattern=None,
        recurring_end_date=None,
        next_occurrence=None,
        reminder_at=None,
        generation=1,
        spec={"title": name},
        status={},
        created_at=NOW,
        updated_at=NOW,
    )


async def _save(store: Store, row: TaskWrite) -> str:
    await store.records.save_task(row)
    if row.recurring_task_uid is not None:  # history: its object is gone
        subject = f"{NAMESPACE}/{row.name}"
        skipped = await store.records.mark_task_deleted(
            uid=row.uid,
            at=NOW,
            skip=not row.completed,
            deleted=Event(type="task.deleted", subject=subject, partition_key=row.owner, key=f"d:{row.uid}"),
            skipped=Event(type="task.skipped", subject=subject, partition_key=row.owner, key=f"s:{row.uid}"),
        )
        assert skipped == (not row.completed)
    return row.title


async def _listed(store: Store, *, prefix: str | None) -> list[str]:
    rows = await store.reads.list_tasks(
        queries.TaskQuery(owner=store.owner, owner_prefix=prefix, namespace=NAMESPACE, now=NOW, sort="title"),
        after=None,
        limit=50,
    )
    return sorted(row.name for row in rows)


@pytest.mark.parametrize("kind", ["completed", "skipped"])
@pytest.mark.parametrize(
    ("api_made", "kubectl_made", "shown"),
    [
        ("live", "live", "api"),
        ("live", "history", "api"),
        ("history", "history", "api"),
        ("history", "live", "kubectl"),
    ],
)
async def test_of_two_tasks_alike_the_list_shows_the_one_get_finds(
    store: Store, api_made: str, kubectl_made: str, shown: str, kind: History
) -> None:
    prefix = names.owner_prefix(store.owner)
    api_row = _task(store, prefix + "water", history=api_made == "history", kind=kind)
    kubectl_row = _task(store, "water", history=kubectl_made == "history", kind=kind)
    await _save(store, api_row)
    await _save(store, kubectl_row)

    expected = api_row.name if shown == "api" else kubectl_row.name
    assert await _listed(store, prefix=prefix) == [expected]
    # Without a prefix (a series' own occurrences) nothing is left out.
    assert await _listed(store, prefix=None) == sorted([api_row.name, kubectl_row.name])


async def test_a_name_alone_and_another_owners_twin_are_shown(store: Store) -> None:
    prefix = names.owner_prefix(store.owner)
    await _save(store, _task(store, "alone"))
    await _save(store, _task(store, "shared"))
    # Bob's API-made task of that public name is his: it outranks nothing of Alice's.
    await _save(store, _task(store, names.owner_prefix(BOB) + "shared", owner=BOB))
    await _save(store, _task(store, prefix + "mine"))
    assert await _listed(store, prefix=prefix) == sorted(["alone", "shared", prefix + "mine"])


def _series(store: Store, name: str) -> RecurringTaskWrite:
    return RecurringTaskWrite(
        uid=str(uuid.uuid4()),
        namespace=NAMESPACE,
        name=name,
        owner=store.owner,
        title=name,
        rule="FREQ=DAILY",
        time_zone="UTC",
        anchor="schedule",
        phase="Active",
        current_task=None,
        next_due_at=NOW,
        occurrences=0,
        last_completed_at=None,
        generation=1,
        spec={},
        status={},
        created_at=NOW,
        updated_at=NOW,
    )


async def test_a_kubectl_made_series_is_listed_again_once_its_api_made_twin_is_gone(store: Store) -> None:
    prefix = names.owner_prefix(store.owner)
    api_made, kubectl_made = _series(store, prefix + "plants"), _series(store, "plants")
    await store.records.save_recurring_task(api_made)
    await store.records.save_recurring_task(kubectl_made)

    async def listed() -> list[str]:
        rows = await store.reads.list_recurring_tasks(
            owner=store.owner, owner_prefix=prefix, namespace=NAMESPACE, after_name=None, limit=50
        )
        return [row.name for row in rows]

    assert await listed() == [api_made.name]
    await store.records.mark_deleted(table="recurring_tasks", uid=api_made.uid, at=NOW)
    assert await listed() == [kubectl_made.name]
