"""A reminder's row keeps its end: what a reconcile that read an older world may and may not undo.

Two operator replicas (or one with a stale watch event) can reconcile the same
Reminder at once. One sees its task completed and cancels it; the other read
the task a moment earlier and records the reminder as pending. The row is
what the inline scheduler sends from, so a pending row of a cancelled
reminder is an e-mail about a completed task (issue #15: found as a Reminder
``Cancelled`` on the object and ``Pending`` in PostgreSQL after a full run).
The upsert holds the rule: an ended reminder (Sent, Failed, Cancelled) is not
made pending again by a save of the same generation; only an edited Reminder
(a newer generation) revives a cancelled one.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from tests.channels.test_delivery import add_reminder, reminder_row
from todo_operator.store import reminder_rows

LATER = datetime(2026, 12, 9, 18, 0, tzinfo=UTC)


async def _phase(pool: AsyncConnectionPool[Any], uid: str) -> str:
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT phase FROM reminders WHERE uid = %s", (uid,))
        found = await cursor.fetchone()
    assert found is not None
    return str(found[0])


async def _save(pool: AsyncConnectionPool[Any], uid: str, *, generation: int) -> str:
    async with pool.connection() as connection:
        return await reminder_rows.ReminderRows(connection).save(reminder_row(uid=uid, generation=generation))


async def _end(pool: AsyncConnectionPool[Any], uid: str, phase: str) -> None:
    async with pool.connection() as connection:
        if phase == "Sent":
            claimed = await reminder_rows.ReminderRows(connection).claim(uid=uid)
            assert claimed is not None
            await reminder_rows.ReminderRows(connection).mark_sent(
                claimed, at=LATER, attempts=1, late=False, event=_event(uid)
            )
        else:
            assert await reminder_rows.ReminderRows(connection).set_phase(uid=uid, phase=phase, at=LATER)


def _event(uid: str) -> Any:
    from todo_operator.domain.events import Event

    return Event(type="reminder.sent", subject="team-a/r1", partition_key="alice@example.com", key=f"s:{uid}")


@pytest.mark.parametrize("ended", ["Cancelled", "Failed", "Sent"])
async def test_a_stale_save_of_the_same_generation_does_not_revive_an_ended_reminder(
    pool: AsyncConnectionPool[Any], ended: str
) -> None:
    uid = await add_reminder(pool)
    await _end(pool, uid, ended)

    assert await _save(pool, uid, generation=1) == ended
    assert await _phase(pool, uid) == ended


async def test_an_edited_reminder_is_live_again_after_a_cancellation(pool: AsyncConnectionPool[Any]) -> None:
    uid = await add_reminder(pool)
    await _end(pool, uid, "Cancelled")

    assert await _save(pool, uid, generation=2) == "Pending"
    assert await _phase(pool, uid) == "Pending"


async def test_a_save_of_an_older_generation_does_not_revive_it_either(
    pool: AsyncConnectionPool[Any],
) -> None:
    uid = await add_reminder(pool)
    await _save(pool, uid, generation=3)
    await _end(pool, uid, "Cancelled")

    assert await _save(pool, uid, generation=2) == "Cancelled"
    row = dataclasses.replace(reminder_row(uid=uid), generation=3)
    async with pool.connection() as connection:
        assert await reminder_rows.ReminderRows(connection).save(row) == "Cancelled"
