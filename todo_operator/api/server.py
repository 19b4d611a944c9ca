"""Running the app: a pool, a Kubernetes client and uvicorn, all on one event loop.

Used by ``todo-operator api`` and by the tests (in a thread, on loopback),
so what the tests run is what the command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from todo_operator import kube
from todo_operator.api import app as api_app
from todo_operator.api.settings import ApiSettings
from todo_operator.clock import Clock


@contextlib.asynccontextmanager
async def resources(
    *, database_url: str, kube_api_url: str | None, pool_size: int = 10
) -> AsyncIterator[tuple[AsyncConnectionPool[AsyncConnection[Any]], kube.Kube]]:
    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        database_url, min_size=1, max_size=pool_size, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True, timeout=30)
    client = kube.client_for(api_url=kube_api_url)
    try:
        yield pool, kube.Kube(client)
    finally:
        await client.close()
        await pool.close()


async def serve(
    settings: ApiSettings,
    *,
    database_url: str,
    kube_api_url: str | None,
    clock: Clock,
    host: str,
    port: int,
    started: threading.Event | None = None,
    stop: asyncio.Event | None = None,
    bound: list[int] | None = None,
) -> None:
    """Serve until cancelled, or until ``stop`` is set; ``bound`` receives the port actually bound."""
    async with resources(database_url=database_url, kube_api_url=kube_api_url) as (pool, kube_api):
        app = api_app.create_app(settings, kube_api=kube_api, pool=pool, clock=clock)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            log_config=None,  # uvicorn's records go to the process' handler (JSON lines)
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task  # raises what made it stop (e.g. the port in use)
                return
            await asyncio.sleep(0.01)
        if bound is not None:
            bound.append(server.servers[0].sockets[0].getsockname()[1])
        if started is not None:
            started.set()
        if stop is not None:
            await stop.wait()
            server.should_exit = True
        await task
