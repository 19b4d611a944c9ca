"""Session-wide real parts: one throw-away PostgreSQL server for the whole run.

Each test that needs a database gets a fresh, migrated one, copied from a
template database migrated once (CREATE DATABASE ... TEMPLATE is fast).

Every test is marked with its kind (``kind_of``): ``pytest -m unit`` runs
what needs neither PostgreSQL nor the emulator, ``-m "not faults"`` leaves
out the fault injection, and so on. The real parts themselves are fixtures
of ``tests/real_parts.py``.
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

pytest_plugins = ["tests.real_parts"]

# The tree mirrors the product (tests/domain, tests/operator, tests/api, ...; tests/packages for
# our other distributions, tests/manifests and tests/observability for what we ship). A test's
# kind (a marker declared in pyproject.toml) is what it uses: one that needs a real part (one
# of these fixtures, directly or through another) is an integration test, any other a unit
# test. A module that starts a real part by itself says so with ``pytestmark``.
REAL_PARTS = frozenset({"postgres_server", "api_server", "dapr", "smtp", "sidecar"})
# Folders whose every test is of one kind, whatever it uses.
FOLDER_KINDS = {
    "packages": "devstack",  # the API emulator and the local stack themselves
    "faults": "faults",  # RELIABILITY.md's faults injected into the running stack
    "hostile": "hostile",  # generated attacker input (hypothesis), thousands of cases
    "manifests": "manifests",  # the chart, kustomize, Terraform, CI and images, rendered and checked
    "observability": "integration",  # dashboards, rules and alerts, against the real metrics
}
KINDS = ("unit", "integration", *FOLDER_KINDS.values())


def kind_of(item: pytest.Item, folder: str) -> str:
    """The kind a test is marked with: its own mark, its folder's, or what it uses."""
    marked = [mark.name for mark in item.iter_markers() if mark.name in KINDS]
    if marked:
        return marked[0]
    if folder in FOLDER_KINDS:
        return FOLDER_KINDS[folder]
    return "integration" if REAL_PARTS & set(getattr(item, "fixturenames", ())) else "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = pathlib.Path(__file__).parent
    for item in items:
        item.add_marker(kind_of(item, item.path.relative_to(tests).parts[0]))


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
