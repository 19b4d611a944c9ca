"""Fixtures of the lifecycle fault tests: the two running stacks (see ``stack.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.lifecycle.stack import Stack, running_stack
from todo_devstack import postgres


@pytest.fixture(scope="package")
def inline_stack(
    postgres_server: postgres.ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database_url = postgres_server.create_database("faults_lifecycle_inline", template="todo_template")
    with running_stack(
        "inline", database_url=database_url, mail_folder=tmp_path_factory.mktemp("inline-mail")
    ) as stack:
        yield stack


@pytest.fixture(scope="package")
def cronjob_stack(
    postgres_server: postgres.ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database_url = postgres_server.create_database("faults_lifecycle_cronjob", template="todo_template")
    with running_stack(
        "cronjob", database_url=database_url, mail_folder=tmp_path_factory.mktemp("cronjob-mail")
    ) as stack:
        yield stack
