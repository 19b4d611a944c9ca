"""The REST shim on loopback for the API tests: the real app, uvicorn, PostgreSQL, the emulator.

Each test gets its own namespace and its own app configured for it (as the
Helm chart configures one per deployment), served by ``api.server.serve`` —
the code ``todo-operator api`` runs — in a thread with its own event loop,
beside the session's operator. Tests speak HTTP to it with Bearer tokens
signed here.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import jwt
import pytest

import kube_emulator as apiserver
from todo_operator.api import server
from todo_operator.api.settings import ApiSettings
from todo_operator.clock import Clock

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
ISSUER = "https://issuer.test"
AUDIENCE = "todo-api"
# Dapr's app API token, as the chart gives it to the API and its sidecar: without one (or the
# insecure setting) the API refuses every delivery to /events/*.
DAPR_APP_TOKEN = "the-sidecar's-app-token-0123456789"
ALICE = "alice@example.com"
BOB = "bob@example.com"


def token(user: str, *, admin: bool = False, secret: str = SECRET, ttl: float = 3600, **claims: Any) -> str:
    payload: dict[str, Any] = {
        "sub": user,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time() + ttl),
        "roles": ["todo-admin"] if admin else [],
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


class ApiThread:
    def __init__(self, settings: ApiSettings, *, database_url: str, kube_api_url: str, clock: Clock) -> None:
        self._settings = settings
        self._database_url = database_url
        self._kube_api_url = kube_api_url
        self._clock = clock
        self._started = threading.Event()
        self._bound: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="todo-api", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await server.serve(
                self._settings,
                database_url=self._database_url,
                kube_api_url=self._kube_api_url,
                clock=self._clock,
                host="127.0.0.1",
                port=0,
                started=self._started,
                stop=self._stop,
                bound=self._bound,
            )

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by start()
            self._error = error
            self._started.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._bound[0]}"

    def __enter__(self) -> ApiThread:
        self._thread.start()
        if not self._started.wait(30) or self._error is not None:
            raise RuntimeError(f"the API did not start: {self._error!r}")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class Api:
    """HTTP clients for the app of one test, one per user."""

    def __init__(self, thread: ApiThread) -> None:
        self.url = thread.url
        self._clients: list[httpx.Client] = []

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=20, headers=headers or {})
        self._clients.append(client)
        return client

    def as_user(self, user: str, *, admin: bool = False) -> httpx.Client:
        return self.client({"Authorization": f"Bearer {token(user, admin=admin)}"})

    def anonymous(self) -> httpx.Client:
        return self.client()

    def sidecar(self) -> httpx.Client:
        """Dapr's sidecar delivering events: no user, the app token of ``api_settings``."""
        return self.client({"dapr-api-token": DAPR_APP_TOKEN})

    def close(self) -> None:
        for client in self._clients:
            client.close()


def api_settings(namespace: str, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "namespace": namespace,
        "jwt_secret": SECRET,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "dapr_app_token": DAPR_APP_TOKEN,
        **overrides,
    }
    return ApiSettings(**values)


@pytest.fixture
def make_api(
    api_server: apiserver.ApiServerThread, operator_database_url: str, clock: Clock
) -> Iterator[Callable[..., Api]]:
    """Start an app for a namespace, with settings overridden as asked; stopped after the test."""
    started: list[tuple[ApiThread, Api]] = []

    def make(namespace: str, **overrides: Any) -> Api:
        thread = ApiThread(
            api_settings(namespace, **overrides),
            database_url=operator_database_url,
            kube_api_url=api_server.url,
            clock=clock,
        ).__enter__()
        api = Api(thread)
        started.append((thread, api))
        return api

    yield make
    for thread, api in started:
        api.close()
        thread.__exit__()


@pytest.fixture
def api(make_api: Callable[..., Api], namespace: str, operator: object) -> Api:
    return make_api(namespace)


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def listed(client: httpx.Client, path: str = "/api/v1/tasks", **params: Any) -> list[dict[str, Any]]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def wait_listed(
    client: httpx.Client, names: set[str], path: str = "/api/v1/tasks", **params: Any
) -> list[dict[str, Any]]:
    """Lists read PostgreSQL, which the operator fills a moment after a write: wait for the rows."""
    found: list[dict[str, Any]] = wait_for(
        f"{sorted(names)} listed",
        lambda: (
            (items := listed(client, path, **params)) and names <= {item["name"] for item in items} and items
        ),
    )
    return found


def forged_event(owner: str, namespace: str) -> dict[str, Any]:
    """A CloudEvent as Dapr would deliver it, sent by someone who is not the sidecar."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"/apis/todo.dev/v1alpha1/namespaces/{namespace}/tasks",
        "type": "task.deleted",
        "subject": f"{namespace}/forged",
        "time": datetime.now(tz=UTC).isoformat(),
        "datacontenttype": "application/json",
        "dataschema": "https://todo.dev/schemas/events/task.deleted/v1.json",
        "partitionkey": owner,
        "data": {},
    }
