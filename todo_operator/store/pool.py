"""The one way this project opens PostgreSQL connection pools."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


def open_pool(database_url: str, *, max_size: int) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A pool (not yet opened) of autocommit connections; transactions are explicit."""
    return AsyncConnectionPool(
        database_url,
        open=False,
        min_size=1,
        max_size=max_size,
        # A connection broken by a database restart is noticed before use (F21).
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True},
    )
