"""What is due is found in the scope's namespaces only, as PostgreSQL's regular expressions read them.

The oracle is Kopf's namespace matcher: the rows a scope's queries return are
exactly those in the namespaces Kopf would watch with the scope's patterns.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from tests.channels.test_delivery import reminder_row
from tests.domain.test_scope import kopf_serves
from tests.store.test_records import _task
from todo_operator.domain.scope import NamespaceScope
from todo_operator.store.records import Records
from todo_operator.store.reminder_rows import ReminderRows

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
NAMESPACES = ["team-a", "team-a-dev", "team-b", "team-bb", "payments", "default", "kube-system", "t3am-a"]
SCOPES = [
    NamespaceScope(),
    NamespaceScope(included=("team-a*",)),
    NamespaceScope(included=("team-?",)),
    NamespaceScope(included=("team-*", "payments"), excluded=("team-b*",)),
    NamespaceScope(excluded=("team-*", "payments")),
    NamespaceScope(included=("payments",)),
    NamespaceScope(included=("nothing-*",)),
]


@pytest.fixture
async def rows_everywhere(pool: AsyncConnectionPool[Any]) -> None:
    """In every namespace: an overdue open task, a due inline reminder and a missed CronJob one."""
    records = Records(pool)
    for namespace in NAMESPACES:
        await records.save_task(_task(uid=str(uuid.uuid4()), namespace=namespace, name="t", due_at=NOW))
        for delivery, phase in (("inline", "Pending"), ("cronjob", "Scheduled")):
            row = reminder_row(uid=str(uuid.uuid4()), fire_at=NOW - timedelta(hours=1), name=delivery)
            await ReminderRows(pool).save(
                dataclasses.replace(row, namespace=namespace, delivery=delivery, phase=phase)
            )


@pytest.mark.usefixtures("rows_everywhere")
@pytest.mark.parametrize("scope", SCOPES, ids=lambda scope: scope.describe())
async def test_a_scope_finds_the_work_of_the_namespaces_kopf_would_watch(
    pool: AsyncConnectionPool[Any], scope: NamespaceScope
) -> None:
    rows = ReminderRows(pool, scope=scope)
    expected = sorted(ns for ns in NAMESPACES if kopf_serves(scope, ns))

    assert sorted(ns for ns, _ in await rows.open_tasks_due(now=NOW, limit=100)) == expected
    assert sorted(ns for _, ns, _ in await rows.due_inline(now=NOW, limit=100)) == expected
    assert sorted(ns for _, ns, _ in await rows.missed_cronjobs(before=NOW, limit=100)) == expected
    found = [await rows.next_open_task_due(), await rows.next_inline_fire(), await rows.next_cronjob_check()]
    assert found == ([NOW, NOW - timedelta(hours=1), NOW - timedelta(hours=1)] if expected else [None] * 3)


@pytest.mark.usefixtures("rows_everywhere")
async def test_a_job_trigger_finds_only_a_reminder_in_scope(pool: AsyncConnectionPool[Any]) -> None:
    due = await ReminderRows(pool).due_inline(now=NOW, limit=100)
    uids = {namespace: uid for uid, namespace, _ in due}
    shard = ReminderRows(pool, scope=NamespaceScope(included=("team-a*",)))

    assert await shard.target(uid=uids["team-a-dev"]) is not None
    assert await shard.target(uid=uids["payments"]) is None
