"""Wake-ups through PostgreSQL ``LISTEN``/``NOTIFY``: workers learn of new work from the database.

Migration 0008's triggers notify a channel whenever a row that is work for
someone is written (an outbox row to publish, a reminder or a due task to
watch), in the writer's transaction, so the notification arrives at commit and
never for a rolled-back write, whichever process or replica wrote it. A
:class:`Listener` holds one connection that listens and rings a bell (a plain
callback) per notification; the worker then looks at the table as before and
still claims with ``SKIP LOCKED``: a notification only says "look now", so one
that is lost or folded with another costs nothing but the look it saves.

Nothing is missed across a dropped connection: after every (re)connect the
listener first listens, then rings every bell once, so each worker looks at
the table *after* listening again; a write that committed while the connection
was down is seen by that look, any later one notifies.

The connection is not taken from a pool: a listening connection must stay
with its listener. PgBouncer in transaction mode does not pass ``LISTEN`` on;
behind it, set ``TODO_LISTEN_NOTIFY=false`` and the workers poll as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import pq, sql

logger = logging.getLogger(__name__)

OUTBOX = "todo_outbox"  # an outbox row can be claimed
DUE_WORK = "todo_due_work"  # a reminder waits for its moment, or an open task has a due time

# A connection that went quiet is checked this often (a network that drops packets
# silently would otherwise leave the listener deaf and waiting for good).
_CHECK_SECONDS = 30.0


class Listener:
    """Listens on ``bells``' channels and calls the channel's bell for every notification."""

    def __init__(
        self,
        conninfo: str,
        bells: Mapping[str, Callable[[], None]],
        *,
        retry_seconds: float = 0.5,
        retry_cap_seconds: float = 30.0,
    ) -> None:
        self._conninfo = conninfo
        self._bells = dict(bells)
        self._retry = retry_seconds
        self._retry_cap = retry_cap_seconds
        # Set while listening (tests wait for it before they write).
        self.listening = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled; reconnect with a capped exponential backoff."""
        failures = 0
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError, TimeoutError) as error:
                self.listening.clear()
                failures += 1
                delay = min(self._retry * 2 ** (failures - 1), self._retry_cap)
                logger.warning("wake-ups: not listening (%s); again in %.1fs", error, delay)
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _listen(self) -> None:
        connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        async with connection:
            for channel in self._bells:
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.listening.set()
            self._ring_all()
            while True:
                if await self._readable(connection):
                    self._hear(connection)
                else:
                    # Quiet for a while: is the connection still there? (Notifications that come
                    # with the answer are kept by psycopg, not heard: every worker looks once.)
                    await asyncio.wait_for(connection.execute("SELECT 1"), _CHECK_SECONDS)
                    self._ring_all()

    @staticmethod
    async def _readable(connection: psycopg.AsyncConnection[Any]) -> bool:
        """Wait until the server sends something (True), or ``_CHECK_SECONDS`` of silence (False).

        Not ``AsyncConnection.notifies()``: it wakes every 100 ms to look for a cancellation,
        which is most of what an idle worker would spend (docs/PERFORMANCE.md, "Wake-ups").
        """
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        socket = connection.pgconn.socket
        loop.add_reader(socket, readable.set)
        try:
            await asyncio.wait_for(readable.wait(), _CHECK_SECONDS)
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(socket)
        return True

    def _hear(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Read what arrived and ring the bell of each notification's channel."""
        connection.pgconn.consume_input()
        if connection.pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the listening connection was closed")
        while (notification := connection.pgconn.notifies()) is not None:
            bell = self._bells.get(notification.relname.decode())
            if bell is not None:
                bell()

    def _ring_all(self) -> None:
        for bell in self._bells.values():
            bell()
