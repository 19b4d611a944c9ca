"""Settings and reads shared by the tests that run the operator in a thread against the emulator."""

from __future__ import annotations

from typing import Any

import psycopg

from todo_operator.operator.settings import OperatorSettings

TEST_SENDER = "todo@example.com"


def operator_settings(*, database_url: str, api_url: str, **overrides: Any) -> OperatorSettings:
    """Quick retries (0.5 s) and watches that end within a minute; ``overrides`` on top.

    With ``smtp_port`` given, reminders are sent inline from ``todo@example.com``
    (there is no CronJob controller in the emulator).
    """
    values: dict[str, Any] = {
        "database_url": database_url,
        "kube_api_url": api_url,
        "retry_delay_seconds": 0.5,
        "watch_server_timeout_seconds": 60,
    }
    if "smtp_port" in overrides:
        values.update(reminder_delivery="inline", smtp_from=TEST_SENDER)
    values.update(overrides)
    return OperatorSettings(**values)


def event_types(database_url: str, namespace: str) -> list[str]:
    """The types of the outbox events recorded for objects of ``namespace``, in order."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT event_type FROM outbox WHERE subject LIKE %s ORDER BY id", (f"{namespace}/%",)
        ).fetchall()
    return [row[0] for row in rows]
