"""Schema migrations: numbered plain-SQL files with a rollback each, run by yoyo.

yoyo-migrations applies ``migrations/NNNN.<name>.sql`` in order inside
transactions and records what ran in its own table; each step's
``.rollback.sql`` undoes it. ``todo-operator migrate up|down`` calls these.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import pathlib
from collections.abc import Iterator
from typing import Any

import yoyo

MIGRATIONS = pathlib.Path(str(importlib.resources.files("todo_operator.store").joinpath("migrations")))


def _backend_uri(dsn: str) -> str:
    # yoyo picks the driver from the scheme; psycopg 3 is "postgresql+psycopg".
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


@contextlib.contextmanager
def _backend(dsn: str) -> Iterator[Any]:
    # yoyo keeps its connection open for the backend's lifetime; close it, or the
    # database cannot be dropped or used as a template afterwards.
    backend = yoyo.get_backend(_backend_uri(dsn))
    try:
        yield backend
    finally:
        backend.connection.close()


def migrate_up(dsn: str) -> list[str]:
    """Apply every pending migration; return the ids applied."""
    migrations = yoyo.read_migrations(str(MIGRATIONS))
    with _backend(dsn) as backend, backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [migration.id for migration in pending]


def migrate_down(dsn: str, *, steps: int = 1) -> list[str]:
    """Roll back the ``steps`` most recent migrations; return the ids rolled back."""
    migrations = yoyo.read_migrations(str(MIGRATIONS))
    with _backend(dsn) as backend, backend.lock():
        applied = backend.to_rollback(migrations)[:steps]
        backend.rollback_migrations(applied)
    return [migration.id for migration in applied]


def applied(dsn: str) -> list[str]:
    migrations = yoyo.read_migrations(str(MIGRATIONS))
    with _backend(dsn) as backend:
        return [migration.id for migration in migrations if backend.is_applied(migration)]


class SchemaOutOfDate(RuntimeError):
    """The database lacks migrations this version needs (``todo-operator migrate up``)."""


def pending(dsn: str) -> list[str]:
    """The ids of migrations not applied yet."""
    migrations = yoyo.read_migrations(str(MIGRATIONS))
    with _backend(dsn) as backend:
        return [migration.id for migration in backend.to_apply(migrations)]


def require_current(dsn: str) -> None:
    """Raise :class:`SchemaOutOfDate` unless every migration has been applied."""
    missing = pending(dsn)
    if missing:
        raise SchemaOutOfDate(
            f"the database schema is not up to date (missing {', '.join(missing)}):"
            " run `todo-operator migrate up`"
        )
