"""Schema migrations: numbered plain-SQL files with a rollback each, run by yoyo.

yoyo-migrations applies ``migrations/NNNN.<name>.sql`` in order inside
transactions and records what ran in its own table; each step's
``.rollback.sql`` undoes it. ``todo-operator migrate up|down`` calls these.
"""

from __future__ import annotations

import importlib.resources
import pathlib

import yoyo

MIGRATIONS = pathlib.Path(str(importlib.resources.files("todo_operator.store").joinpath("migrations")))


def _backend_uri(dsn: str) -> str:
    # yoyo picks the driver from the scheme; psycopg 3 is "postgresql+psycopg".
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def migrate_up(dsn: str) -> list[str]:
    """Apply every pending migration; return the ids applied."""
    backend = yoyo.get_backend(_backend_uri(dsn))
    migrations = yoyo.read_migrations(str(MIGRATIONS))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [migration.id for migration in pending]


def migrate_down(dsn: str, *, steps: int = 1) -> list[str]:
    """Roll back the ``steps`` most recent migrations; return the ids rolled back."""
    backend = yoyo.get_backend(_backend_uri(dsn))
    migrations = yoyo.read_migrations(str(MIGRATIONS))
    with backend.lock():
        applied = backend.to_rollback(migrations)[:steps]
        backend.rollback_migrations(applied)
    return [migration.id for migration in applied]


def applied(dsn: str) -> list[str]:
    backend = yoyo.get_backend(_backend_uri(dsn))
    migrations = yoyo.read_migrations(str(MIGRATIONS))
    return [migration.id for migration in migrations if backend.is_applied(migration)]
