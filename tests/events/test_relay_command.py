"""``todo-operator relay`` and ``run_relay``: settings from the environment, a whole run, the migration."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from todo_devstack.dapr import DaprDouble
from todo_operator.commands import relay as relay_command
from todo_operator.events import relay
from todo_operator.store import schema
from todo_operator.usage import UsageError

from .conftest import append, outbox_rows, task_event


def test_missing_database_url_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TODO_DATABASE_URL", raising=False)
    parser = argparse.ArgumentParser()
    relay_command.configure(parser)
    with pytest.raises(UsageError, match="TODO_DATABASE_URL"):
        relay_command.run(parser.parse_args([]))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODO_DATABASE_URL", "postgresql://db/todo")
    monkeypatch.setenv("DAPR_HTTP_PORT", "3600")
    monkeypatch.setenv("TODO_PUBSUB_NAME", "kafka")
    monkeypatch.setenv("TODO_RELAY_MAX_ATTEMPTS", "4")
    settings = relay.RelaySettings()  # type: ignore[call-arg]
    assert settings.dapr_http_endpoint == "http://127.0.0.1:3600"
    assert (settings.pubsub_name, settings.relay_max_attempts) == ("kafka", 4)
    monkeypatch.setenv("TODO_DAPR_HTTP_ENDPOINT", "http://dapr:3500")
    assert relay.RelaySettings().dapr_http_endpoint == "http://dapr:3500"  # type: ignore[call-arg]


async def test_run_relay_publishes_until_stopped(
    database_url: str, pool: AsyncConnectionPool[Any], sidecar: DaprDouble
) -> None:
    await append(pool, [task_event(f"user-{n}@example.com", n) for n in range(5)])
    settings = relay.RelaySettings(
        database_url=database_url, dapr_http_endpoint=sidecar.url, relay_idle_seconds=0.01
    )
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run_relay(settings, stop=stop))
    async with asyncio.timeout(20):
        while not all(row["published_at"] for row in await outbox_rows(pool)):  # noqa: ASYNC110  # a deadline
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(running, timeout=10)
    assert len([r for r in sidecar.received if r.topic == "task-events"]) == 5


def test_events_migration_rolls_back_and_reapplies(empty_database_url: str) -> None:
    applied = schema.migrate_up(empty_database_url)
    assert applied[:2] == ["0001.initial-schema", "0002.events"]
    later = len(applied) - 2  # migrations of other features that come after this one
    assert schema.migrate_down(empty_database_url, steps=later + 1)[-1] == "0002.events"
    assert schema.migrate_up(empty_database_url)[0] == "0002.events"
