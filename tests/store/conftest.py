"""One connection pool per test, on the suite's throw-away PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    opened: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url, open=False, kwargs={"autocommit": True}
    )
    await opened.open(wait=True)
    try:
        yield opened
    finally:
        await opened.close()
