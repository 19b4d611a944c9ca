"""Migrations against a real PostgreSQL: up, down, up again; the seed's columns and indexes."""

from __future__ import annotations

import psycopg
import pytest

from todo_operator.cli import main
from todo_operator.store import schema

MIGRATIONS = [
    "0001.initial-schema",
    "0002.events",
    "0003.reminder-delivery",
    "0004.api-search",
    "0005.reminder-dead-letters",
    "0006.reminder-failure-reason",
    "0007.web-sessions",
    "0008.wakeups",
]
TABLES = {
    "tasks",
    "recurring_tasks",
    "reminders",
    "outbox",
    "dead_letters",
    "processed_events",
    "web_sessions",
    "web_sign_ins",
}


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_yoyo%%'"
            " AND tablename NOT LIKE 'yoyo%%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_up_creates_every_table(empty_database_url: str) -> None:
    applied = schema.migrate_up(empty_database_url)
    assert applied == MIGRATIONS
    assert _tables(empty_database_url) >= TABLES


def test_up_is_idempotent(empty_database_url: str) -> None:
    schema.migrate_up(empty_database_url)
    assert schema.migrate_up(empty_database_url) == []


def test_down_then_up_round_trips(empty_database_url: str) -> None:
    schema.migrate_up(empty_database_url)
    assert schema.migrate_down(empty_database_url, steps=len(MIGRATIONS)) == MIGRATIONS[::-1]
    assert not (_tables(empty_database_url) & TABLES)
    schema.migrate_up(empty_database_url)
    assert _tables(empty_database_url) >= TABLES


def test_tasks_carry_the_seed_columns(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        columns = {
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks'"
            ).fetchall()
        }
    assert columns >= {
        "recurring_pattern",
        "recurring_end_date",
        "next_occurrence",
        "reminder_at",
        "reminder_sent",
    }


@pytest.mark.parametrize(
    ("index", "predicate"),
    [
        ("tasks_next_occurrence", "(next_occurrence IS NOT NULL)"),
        ("tasks_pending_reminder", "((reminder_at IS NOT NULL) AND (reminder_sent = false))"),
    ],
)
def test_the_seed_partial_indexes_exist(database_url: str, index: str, predicate: str) -> None:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (index,)).fetchone()
    assert row is not None
    assert row[0].endswith(f"WHERE {predicate}")


def test_cli_migrate_up_down(empty_database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "up", "--database-url", empty_database_url]) == 0
    assert f"applied {len(MIGRATIONS)} migration(s): {', '.join(MIGRATIONS)}" in capsys.readouterr().out
    assert main(["migrate", "down", "--database-url", empty_database_url]) == 0
    assert f"rolled back 1 migration(s): {MIGRATIONS[-1]}" in capsys.readouterr().out


def test_cli_migrate_without_database_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TODO_DATABASE_URL", raising=False)
    assert main(["migrate", "up"]) == 2
    assert capsys.readouterr().err.strip() == (
        "todo-operator migrate: no database: pass --database-url or set TODO_DATABASE_URL"
    )


def test_cli_migrate_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "up", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("todo-operator migrate: cannot reach the database")
    assert err.count("\n") == 1
