"""A name's live row, and handing it to the object that holds the name now.

Rows are keyed by the uid of their object, and a name is unique among live
rows. A live row of a name whose object is gone without its deletion being
recorded (the cluster was rebuilt and the database restored, then the objects
applied again from Git with new uids) would keep the new object of that name
from ever being recorded. :meth:`RecordClaims.rekey` moves such a row, with
its history, to the new uid; the rows that refer to it (a series'
occurrences, a task's reminders) move with it. Whether the new object really
holds the name is the caller's to check, in the cluster, first
(``operator/claims.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection

from todo_operator.store.repository import Repository

Table = Literal["tasks", "recurring_tasks", "reminders"]

# What refers to a row of each table by its uid: moved with it.
_REFERENCES: dict[Table, tuple[str, str] | None] = {
    "recurring_tasks": ("tasks", "recurring_task_uid"),
    "tasks": ("reminders", "task_uid"),
    "reminders": None,
}


@dataclass(frozen=True, kw_only=True)
class LiveRow:
    """The live row of a name: whose it is, and what was last recorded of it."""

    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class OccurrenceRow:
    """A live occurrence of a series, as recorded: enough to make its Task again."""

    name: str
    index: int
    spec: dict[str, Any]


async def _live(
    connection: AsyncConnection[Any], table: Table, *, namespace: str, name: str, lock: bool
) -> LiveRow | None:
    # The table name is one of three literals, never user text.
    statement = (
        f"SELECT uid::text, generation, spec, status FROM {table}"
        " WHERE namespace = %s AND name = %s AND deleted_at IS NULL"
    )
    cursor = await connection.execute(statement + (" FOR UPDATE" if lock else ""), (namespace, name))
    found = await cursor.fetchone()
    if found is None:
        return None
    uid, generation, spec, status = found
    return LiveRow(uid=uid, generation=generation, spec=spec, status=status)


class RecordClaims(Repository):
    """Find the live row of a name; move it to the uid of the object that holds the name now."""

    async def live(self, table: Table, *, namespace: str, name: str) -> LiveRow | None:
        async with self._connection() as connection:
            return await _live(connection, table, namespace=namespace, name=name, lock=False)

    async def rekey(
        self, table: Table, *, namespace: str, name: str, old_uid: str, new_uid: str, generation: int
    ) -> LiveRow | None:
        """Move the live row of ``name`` from ``old_uid`` to ``new_uid``, recorded at ``generation``.

        The row afterwards; ``None`` when the name's live row is neither uid's (it changed
        hands since it was read). Moved already (by a second replica): the row as it is.
        """
        if table not in _REFERENCES:
            raise ValueError(f"unknown table {table!r}")
        async with self._transaction() as connection:
            row = await _live(connection, table, namespace=namespace, name=name, lock=True)
            if row is None or row.uid not in (old_uid, new_uid):
                return None
            if row.uid == new_uid:
                return row
            await connection.execute(
                f"UPDATE {table} SET uid = %s, generation = %s WHERE uid = %s", (new_uid, generation, old_uid)
            )
            reference = _REFERENCES[table]
            if reference is not None:
                referring, column = reference
                await connection.execute(
                    f"UPDATE {referring} SET {column} = %s WHERE {column} = %s", (new_uid, old_uid)
                )
        return LiveRow(uid=new_uid, generation=generation, spec=row.spec, status=row.status)

    async def live_occurrences(self, *, series_uid: str) -> list[OccurrenceRow]:
        """The occurrences of a series not recorded as deleted, by index."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT name, occurrence, spec FROM tasks"
                " WHERE recurring_task_uid = %s AND deleted_at IS NULL AND occurrence IS NOT NULL"
                " ORDER BY occurrence",
                (series_uid,),
            )
            return [
                OccurrenceRow(name=name, index=index, spec=spec)
                for name, index, spec in await cursor.fetchall()
            ]
