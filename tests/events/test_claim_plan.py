"""The claim's query plan: an ordered walk of the unpublished rows that stops at the limit.

Right after a burst, before autovacuum has analyzed the outbox, PostgreSQL's
default plan for the claim was a bitmap scan of every unpublished row with the
per-row NOT EXISTS probe, then a sort (10x slower at 25,000 rows). The check
is on the plan, not on time: the plan is what decides how the claim scales.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from todo_operator.store import outbox

from .conftest import START, append, task_event


def _node_types(plan: Any) -> list[str]:
    found = [plan["Node Type"]]
    for child in plan.get("Plans", []):
        found.extend(_node_types(child))
    return found


async def _claim_plan(pool: AsyncConnectionPool[Any], *, setup: bool) -> list[str]:
    parameters = {
        "now": START,
        "limit": 1000,
        "relay": "r#1",
        "until": START + timedelta(minutes=1),
        "ahead_of": None,
    }
    async with pool.connection() as connection, connection.transaction(force_rollback=True):
        if setup:
            await connection.execute(outbox._CLAIM_SETUP, (outbox._CLAIM_LOCK,))
        cursor = await connection.execute("EXPLAIN (FORMAT JSON) " + outbox._CLAIM, parameters)
        found = await cursor.fetchone()
    assert found is not None
    plan = found[0] if isinstance(found[0], list) else json.loads(found[0])
    return _node_types(plan[0]["Plan"])


async def test_claim_walks_the_unpublished_index_in_order_even_before_analyze(
    pool: AsyncConnectionPool[Any],
) -> None:
    users = [f"user-{n}@example.com" for n in range(100)]
    await append(pool, [task_event(user, n) for n in range(15) for user in users])

    nodes = await _claim_plan(pool, setup=True)
    assert "Sort" not in nodes, nodes
    assert "Bitmap Heap Scan" not in nodes, nodes
    assert {"Index Scan", "Limit"} <= set(nodes), nodes

    # The control: without the setup, the same query on the same table sorts.
    assert "Sort" in await _claim_plan(pool, setup=False)
