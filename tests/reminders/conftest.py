"""Fixtures of the reminder tests: a real SMTP server, and a pool on the test's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from todo_devstack.smtp import SmtpSink


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url, open=False, max_size=20, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    yield pool
    await pool.close()
