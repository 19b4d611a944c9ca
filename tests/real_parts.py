"""The real parts, as fixtures any test may ask for (a plugin of tests/conftest.py).

The API emulator over HTTP, the operator, the Dapr double, an SMTP server and a
pool on the test's own database. One operator runs for the whole session in its
own thread (Kopf's shutdown takes seconds, and it must own its event loop);
tests are isolated by namespace. Its clock is a :class:`ManualClock` that tests
move. A test that asks for one of these, directly or through another fixture,
is an integration test (``REAL_PARTS`` in tests/conftest.py).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

import kube_emulator as apiserver
from tests.kubeclient import KubeClient
from tests.stacks import operator_settings
from todo_devstack import postgres
from todo_devstack.dapr import DaprThread
from todo_devstack.operator_thread import OperatorThread
from todo_devstack.smtp import SmtpSink
from todo_operator.clock import ManualClock
from todo_operator.domain import crds
from todo_operator.events.relay import RelaySettings
from todo_operator.telemetry.settings import TelemetrySettings

_namespaces = itertools.count(1)


@pytest.fixture(scope="session")
def api_server() -> Iterator[apiserver.ApiServerThread]:
    with apiserver.ApiServerThread(crds=crds.all_crds()) as server:
        yield server


@pytest.fixture(scope="session")
def operator_database_url(postgres_server: postgres.ThrowawayPostgres) -> str:
    return postgres_server.create_database("operator", template="todo_template")


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    # Real "now" to start with: the emulator stamps creationTimestamp with real time.
    return ManualClock(datetime.now(tz=UTC).replace(microsecond=0))


@pytest.fixture
def clock_at_real_time(clock: ManualClock) -> ManualClock:
    """The session clock caught up with real time, for tests whose other half (a ``notify``
    process, as a CronJob's pod runs it) reads the real clock. It only ever moves forward."""
    clock.set(max(clock.now(), datetime.now(tz=UTC).replace(microsecond=0)))
    return clock


@pytest.fixture(scope="session")
def dapr() -> Iterator[DaprThread]:
    """The Dapr sidecar's publish API (a double: there is no daprd here), recording CloudEvents."""
    with DaprThread() as double:
        yield double


@pytest.fixture(scope="session")
def operator(
    api_server: apiserver.ApiServerThread,
    operator_database_url: str,
    clock: ManualClock,
    dapr: DaprThread,
    operator_metrics_port: int,
) -> Iterator[OperatorThread]:
    settings = operator_settings(database_url=operator_database_url, api_url=api_server.url)
    publishing = RelaySettings(database_url=operator_database_url, dapr_http_endpoint=dapr.url)
    # /metrics on loopback, read fresh from PostgreSQL at every scrape (tests/telemetry).
    telemetry = TelemetrySettings(
        metrics_host="127.0.0.1", metrics_port=operator_metrics_port, metrics_max_age_seconds=0
    )
    with OperatorThread(settings, clock=clock, relay_settings=publishing, telemetry=telemetry) as running:
        yield running


@pytest.fixture(scope="session")
def operator_metrics_port() -> int:
    return postgres.free_port()


@pytest.fixture
def kube(api_server: apiserver.ApiServerThread) -> Iterator[KubeClient]:
    client = KubeClient(api_server.url)
    yield client
    client.close()


@pytest.fixture
def namespace(kube: KubeClient, request: pytest.FixtureRequest) -> str:
    name = f"t{next(_namespaces)}-{request.node.name.replace('_', '-')}"[:50].lower()
    name = "".join(character if character.isalnum() or character == "-" else "-" for character in name)
    name = name.rstrip("-")  # after the replacement: a parametrized test's name ends in "]"
    kube.create_namespace(name)
    return name


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """Autocommit connections to the test's own database, as the product's pools are."""
    opened: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url, open=False, max_size=20, kwargs={"autocommit": True}
    )
    await opened.open(wait=True)
    try:
        yield opened
    finally:
        await opened.close()
