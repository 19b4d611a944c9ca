"""The operator's unit-of-work writes against a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from todo_operator.domain.events import Event
from todo_operator.store.records import RecordDeleted, RecordNotFound, Records, TaskWrite

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def records(pool: AsyncConnectionPool[Any]) -> Records:
    return Records(pool)


def _task(**changes: Any) -> TaskWrite:
    row = TaskWrite(
        uid=str(uuid.uuid4()),
        namespace="team-a",
        name="renew-passport",
        owner="alice@example.com",
        title="Renew passport",
        description="",
        priority="urgent",
        tags=["admin"],
        due_at=NOW + timedelta(days=9),
        completed=False,
        completed_at=None,
        phase="Open",
        recurring_task_uid=None,
        occurrence=None,
        recurring_pattern=None,
        recurring_end_date=None,
        next_occurrence=None,
        reminder_at=None,
        generation=1,
        spec={"title": "Renew passport"},
        status={},
        created_at=NOW,
        updated_at=NOW,
    )
    return dataclasses.replace(row, **changes)


def _event(row: TaskWrite, kind: str = "task.created") -> Event:
    return Event(
        type=kind, subject=f"{row.namespace}/{row.name}", partition_key=row.owner, key=f"{kind}:{row.uid}"
    )  # type: ignore[arg-type]


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_change_and_its_event_commit_together(records: Records, database_url: str) -> None:
    row = _task()
    await records.save_task(row, events=[_event(row)])
    assert _count(database_url, "SELECT count(*) FROM tasks") == 1
    assert _count(database_url, "SELECT count(*) FROM outbox WHERE event_type = 'task.created'") == 1


async def test_saving_again_appends_no_second_event(records: Records, database_url: str) -> None:
    row = _task()
    for _ in range(3):  # a handler re-run after a crash
        await records.save_task(row, events=[_event(row)])
    assert _count(database_url, "SELECT count(*) FROM tasks") == 1
    assert _count(database_url, "SELECT count(*) FROM outbox") == 1


async def test_a_failed_event_write_rolls_back_the_change(records: Records, database_url: str) -> None:
    row = _task()
    poisoned = Event(
        type="task.created", subject="x" * 10, partition_key=row.owner, key="k", data={"bad": "\x00"}
    )
    with pytest.raises(psycopg.Error):
        await records.save_task(row, events=[poisoned])
    assert _count(database_url, "SELECT count(*) FROM tasks") == 0


async def test_the_first_completion_instant_wins(records: Records) -> None:
    row = _task()
    await records.save_task(row)
    first = await records.save_task(dataclasses.replace(row, completed=True, completed_at=NOW, generation=2))
    again = await records.save_task(
        dataclasses.replace(row, completed=True, completed_at=NOW + timedelta(minutes=5), generation=2)
    )
    assert first == again == NOW
    assert await records.completion_instant(task_uid=row.uid) == NOW


async def test_reopening_clears_the_completion(records: Records) -> None:
    row = _task()
    await records.save_task(dataclasses.replace(row, completed=True, completed_at=NOW))
    assert await records.save_task(dataclasses.replace(row, completed=False, completed_at=None)) is None
    with pytest.raises(RecordNotFound):
        await records.completion_instant(task_uid=row.uid)


async def test_deletion_keeps_the_row_as_history(records: Records, database_url: str) -> None:
    row = _task()
    await records.save_task(row)
    await records.mark_deleted(table="tasks", uid=row.uid, at=NOW, events=[_event(row, "task.deleted")])
    await records.mark_deleted(table="tasks", uid=row.uid, at=NOW + timedelta(hours=1))
    assert _count(database_url, "SELECT count(*) FROM tasks WHERE deleted_at = '2026-12-01T09:00:00Z'") == 1


def _phase_and_events(dsn: str, row: TaskWrite) -> tuple[str, list[str]]:
    with psycopg.connect(dsn) as connection:
        found = connection.execute("SELECT phase FROM tasks WHERE uid = %s", (row.uid,)).fetchone()
        events = connection.execute(
            "SELECT event_type FROM outbox WHERE subject = %s ORDER BY id", (f"{row.namespace}/{row.name}",)
        ).fetchall()
    assert found is not None
    return found[0], [event[0] for event in events]


async def _forget(records: Records, row: TaskWrite, *, skip: bool, at: datetime = NOW) -> bool:
    return await records.mark_task_deleted(
        uid=row.uid,
        at=at,
        skip=skip,
        deleted=_event(row, "task.deleted"),
        skipped=_event(row, "task.skipped"),
    )


async def test_a_skipped_occurrence_is_history_with_its_event_before_the_deletion(
    records: Records, database_url: str
) -> None:
    row = _task(occurrence=3)
    await records.save_task(row)
    assert await _forget(records, row, skip=True) is True
    # Handled again (a retried delete handler): nothing more, and it says it is no longer live.
    assert await _forget(records, row, skip=True, at=NOW + timedelta(hours=1)) is False
    assert _phase_and_events(database_url, row) == ("Skipped", ["task.skipped", "task.deleted"])
    with pytest.raises(RecordDeleted):
        await records.save_task(dataclasses.replace(row, completed=True, completed_at=NOW, generation=2))


async def test_a_recorded_completion_is_never_turned_into_a_skip(records: Records, database_url: str) -> None:
    """The object may be deleted as the series' current occurrence just after its completion was
    recorded (the series had not moved on yet): it stays Completed, with no ``task.skipped``."""
    row = _task(completed=True, completed_at=NOW, phase="Completed")
    await records.save_task(row)
    assert await _forget(records, row, skip=True) is False
    assert _phase_and_events(database_url, row) == ("Completed", ["task.deleted"])


async def test_a_deletion_that_is_no_skip_keeps_the_phase(records: Records, database_url: str) -> None:
    row = _task()
    await records.save_task(row)
    assert await _forget(records, row, skip=False) is False
    assert _phase_and_events(database_url, row) == ("Open", ["task.deleted"])


async def test_mark_deleted_refuses_unknown_tables(records: Records) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        await records.mark_deleted(table="pg_authid", uid=str(uuid.uuid4()), at=NOW)
