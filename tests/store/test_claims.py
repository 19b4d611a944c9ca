"""A name's live row handed to the object that holds the name now, against a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from todo_operator.store.claims import LiveRow, OccurrenceRow, RecordClaims
from todo_operator.store.records import Records, RecurringTaskWrite, TaskWrite

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NAMESPACE = "team-a"
SERIES = "chores"


@dataclasses.dataclass
class Store:
    records: Records
    claims: RecordClaims


@pytest.fixture
def store(pool: AsyncConnectionPool[Any]) -> Store:
    return Store(records=Records(pool), claims=RecordClaims(pool))


def _series(uid: str) -> RecurringTaskWrite:
    return RecurringTaskWrite(
        uid=uid,
        namespace=NAMESPACE,
        name=SERIES,
        owner="alice@example.com",
        title="Chores",
        rule="FREQ=DAILY",
        time_zone="UTC",
        anchor="schedule",
        phase="Active",
        current_task=f"{SERIES}-2",
        next_due_at=NOW + timedelta(days=1),
        occurrences=2,
        last_completed_at=NOW,
        generation=3,
        spec={"schedule": {"every": "daily"}},
        status={"occurrences": 2, "observedGeneration": 3},
        created_at=NOW,
        updated_at=NOW,
    )


def _occurrence(series_uid: str, index: int, **changes: Any) -> TaskWrite:
    row = TaskWrite(
        uid=str(uuid.uuid4()),
        namespace=NAMESPACE,
        name=f"{SERIES}-{index}",
        owner="alice@example.com",
        title="Chores",
        description="",
        priority="medium",
        tags=[],
        due_at=NOW + timedelta(days=index - 1),
        completed=index == 1,
        completed_at=NOW if index == 1 else None,
        phase="Completed" if index == 1 else "Open",
        recurring_task_uid=series_uid,
        occurrence=index,
        recurring_pattern=None,
        recurring_end_date=None,
        next_occurrence=None,
        reminder_at=None,
        generation=1,
        spec={"title": "Chores", "index": index},
        status={},
        created_at=NOW,
        updated_at=NOW,
    )
    return dataclasses.replace(row, **changes)


async def test_a_name_without_a_live_row_has_none(store: Store) -> None:
    assert await store.claims.live("recurring_tasks", namespace=NAMESPACE, name=SERIES) is None
    assert await store.claims.live_occurrences(series_uid=str(uuid.uuid4())) == []


async def test_the_live_row_of_a_name_is_what_was_last_recorded(store: Store) -> None:
    old = str(uuid.uuid4())
    await store.records.save_recurring_task(_series(old))
    assert await store.claims.live("recurring_tasks", namespace=NAMESPACE, name=SERIES) == LiveRow(
        uid=old,
        generation=3,
        spec={"schedule": {"every": "daily"}},
        status={"occurrences": 2, "observedGeneration": 3},
    )


async def test_rekeying_moves_the_row_and_the_rows_that_refer_to_it(store: Store, database_url: str) -> None:
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    await store.records.save_recurring_task(_series(old))
    first, second = _occurrence(old, 1), _occurrence(old, 2)
    await store.records.save_task(first)
    await store.records.save_task(second)
    # A deleted occurrence is history: not made again.
    gone = _occurrence(old, 3, name=f"{SERIES}-gone")
    await store.records.save_task(gone)
    await store.records.mark_deleted(table="tasks", uid=gone.uid, at=NOW)

    moved = await store.claims.rekey(
        "recurring_tasks", namespace=NAMESPACE, name=SERIES, old_uid=old, new_uid=new, generation=1
    )

    assert moved == LiveRow(uid=new, generation=1, spec=_series(old).spec, status=_series(old).status)
    assert await store.claims.live("recurring_tasks", namespace=NAMESPACE, name=SERIES) == moved
    assert await store.claims.live_occurrences(series_uid=new) == [
        OccurrenceRow(name=f"{SERIES}-1", index=1, spec=first.spec),
        OccurrenceRow(name=f"{SERIES}-2", index=2, spec=second.spec),
    ]
    assert await store.claims.live_occurrences(series_uid=old) == []
    with psycopg.connect(database_url, autocommit=True) as connection:
        left = connection.execute("SELECT count(*) FROM recurring_tasks WHERE uid = %s", (old,)).fetchone()
    assert left == (0,)
    # The object of that name now saves its row as an update of the moved one, with its history.
    await store.records.save_recurring_task(dataclasses.replace(_series(new), occurrences=3))
    assert await store.claims.live_occurrences(series_uid=new) != []


async def test_a_task_row_takes_its_completion_with_it(store: Store) -> None:
    series = str(uuid.uuid4())
    first = _occurrence(series, 1)
    await store.records.save_task(first)
    new = str(uuid.uuid4())
    await store.claims.rekey(
        "tasks", namespace=NAMESPACE, name=first.name, old_uid=first.uid, new_uid=new, generation=1
    )
    assert await store.records.completion_instant(task_uid=new) == NOW


async def test_a_row_rekeyed_already_is_returned_as_it_is(store: Store) -> None:
    """A second replica taking up the same record finds it taken up: the same answer, nothing moved twice."""
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    await store.records.save_recurring_task(_series(old))
    once = await store.claims.rekey(
        "recurring_tasks", namespace=NAMESPACE, name=SERIES, old_uid=old, new_uid=new, generation=2
    )
    again = await store.claims.rekey(
        "recurring_tasks", namespace=NAMESPACE, name=SERIES, old_uid=old, new_uid=new, generation=2
    )
    assert again == once


async def test_a_row_that_changed_hands_is_not_moved(store: Store) -> None:
    old, other, new = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await store.records.save_recurring_task(_series(other))
    moved = await store.claims.rekey(
        "recurring_tasks", namespace=NAMESPACE, name=SERIES, old_uid=old, new_uid=new, generation=1
    )
    assert moved is None
    live = await store.claims.live("recurring_tasks", namespace=NAMESPACE, name=SERIES)
    assert live is not None
    assert live.uid == other


async def test_only_the_three_tables_can_be_rekeyed(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown table 'outbox'"):
        await store.claims.rekey(
            "outbox",  # type: ignore[arg-type]
            namespace=NAMESPACE,
            name=SERIES,
            old_uid=str(uuid.uuid4()),
            new_uid=str(uuid.uuid4()),
            generation=1,
        )
