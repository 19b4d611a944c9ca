"""The ``/metrics`` endpoint of the operator and the relay, served in their own event loop.

aiohttp (already a dependency, through Kopf) rather than prometheus-client's
threaded server: the scrape handler can await a fresh read of the record
from PostgreSQL before it answers, on the same loop and pool as everything else.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client.registry import CollectorRegistry

from todo_operator.telemetry import metrics


@contextlib.asynccontextmanager
async def serving(
    registry: CollectorRegistry,
    *,
    host: str,
    port: int,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[web.AppRunner]:
    """Serve ``/metrics`` on ``host:port`` until the block ends."""

    async def scrape(_: web.Request) -> web.Response:
        if before_scrape is not None:
            await before_scrape()
        body, content_type = metrics.exposition(registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host=host, port=port)
    await site.start()
    try:
        yield runner
    finally:
        await runner.cleanup()
