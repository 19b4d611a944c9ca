"""Session-wide real parts: one throw-away PostgreSQL server for the whole run.

Each test that needs a database gets a fresh, migrated one, copied from a
template database migrated once (CREATE DATABASE ... TEMPLATE is fast).
"""

from __future__ import annotations

import itertools
import pathlib
import shutil
from collections.abc import Iterator

import pytest

from todo_devstack import postgres
from todo_operator.store import schema

_database_numbers = itertools.count(1)
TEMPLATE = "todo_template"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[postgres.ThrowawayPostgres]:
    try:
        bin_dir = postgres.find_bin_dir()
    except postgres.PostgresUnavailable as error:
        pytest.fail(f"PostgreSQL is required for this suite: {error}")
    base = pathlib.Path(tmp_path_factory.mktemp("postgres"))
    with postgres.ThrowawayPostgres(base_dir=base, bin_dir=bin_dir) as server:
        template_dsn = server.create_database(TEMPLATE)
        schema.migrate_up(template_dsn)
        yield server


@pytest.fixture
def database_url(postgres_server: postgres.ThrowawayPostgres) -> str:
    """A fresh, migrated database for one test."""
    return postgres_server.create_database(f"test_{next(_database_numbers)}", template=TEMPLATE)


@pytest.fixture
def empty_database_url(postgres_server: postgres.ThrowawayPostgres) -> str:
    """A fresh database with no schema at all."""
    return postgres_server.create_database(f"empty_{next(_database_numbers)}")


def require_tools(*names: str) -> None:
    """Fail (not skip) when a command the suite needs is missing: .ci/run installs each of them,
    so a missing one is a broken set-up, and a skip would hide the tests it carries."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.fail(f"not on PATH: {', '.join(missing)} (.ci/run installs them with apt-get)")
