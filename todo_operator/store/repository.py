"""The one shape of the store's repositories.

A repository is a class over a *source*:

- a connection pool: each method takes a connection of its own, and is one
  transaction;
- a connection: each method runs inside the transaction the caller holds, so a
  caller can make several calls one unit of work (the reminder send protocol
  holds a row lock across its claim and its outcome).

Writes that append outbox events are traced (:meth:`Repository._unit_of_work`):
their span is the parent of the events they append. Reads and the relay's
own bookkeeping are not: a trace per poll would bury the ones that matter.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from todo_operator.domain.events import Event
from todo_operator.telemetry import tracing

Pool = AsyncConnectionPool[AsyncConnection[Any]]
Source = Pool | AsyncConnection[Any]

# Keyed by the event's derived id: appending the same change again (a retried handler,
# a crash between commit and answer) appends nothing.
_OUTBOX_APPEND = """
INSERT INTO outbox (event_id, topic, event_type, subject, partition_key, payload, traceparent)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""


class Repository:
    """Base of the store's repositories: where a method's connection comes from.

    The pools are autocommit (``store/pool.py``): a statement on its own is its
    own transaction, and a method that needs more says so with :meth:`_transaction`.
    """

    def __init__(self, source: Source) -> None:
        self._source = source

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """The caller's connection, or one from the pool."""
        if isinstance(self._source, AsyncConnection):
            yield self._source
            return
        async with self._source.connection() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A transaction: a new one on a connection from the pool; on the caller's connection,
        a savepoint inside the caller's transaction (or a transaction when it holds none)."""
        async with self._connection() as connection, connection.transaction():
            yield connection

    @contextlib.asynccontextmanager
    async def _unit_of_work(self, operation: str) -> AsyncIterator[AsyncConnection[Any]]:
        """:meth:`_transaction`, traced: its span is the parent of the outbox events it appends."""
        with tracing.database_span(operation):
            async with self._transaction() as connection:
                yield connection

    async def _append_events(self, connection: AsyncConnection[Any], events: Sequence[Event]) -> None:
        """Append to the outbox in ``connection``'s transaction, so an event is published if and
        only if the change it describes was recorded; an event without a trace context takes the
        active one (its change's)."""
        active = tracing.current_traceparent()
        async with connection.cursor() as cursor:
            await cursor.executemany(
                _OUTBOX_APPEND,
                [
                    (
                        event.id,
                        event.topic,
                        event.type,
                        event.subject,
                        event.partition_key,
                        Jsonb(event.data),
                        event.traceparent or active,
                    )
                    for event in events
                ],
            )
