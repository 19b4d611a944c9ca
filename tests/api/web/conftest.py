"""The whole system behind the page, for the browser tests: once per run.

Its own API emulator and database (the session's operator watches the
shared emulator; this stack's objects are its own operator's), the operator
and its relay publishing to a Dapr double that delivers to the API (so
``task-updates`` reach the page as they do in a cluster), the REST API with
the page, and the test OIDC issuer (issuer.py) that the API trusts. Then
Debian's chromium, launched by path, driven by Playwright.
"""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright
from pydantic import SecretStr

import kube_emulator as apiserver
from tests import ROOT
from tests.api.web.issuer import CLIENT_ID, TestIssuer
from tests.conftest import TEMPLATE, require_tools
from tests.kubeclient import KubeClient
from tests.stacks import operator_settings
from todo_devstack import postgres
from todo_devstack.dapr import App, DaprThread
from todo_devstack.demo import RestApiThread
from todo_devstack.operator_thread import OperatorThread
from todo_operator.api.settings import ApiSettings
from todo_operator.domain import crds
from todo_operator.events.relay import RelaySettings

NAMESPACE = "web"
APP_TOKEN = "web-tests-dapr-app-token-0123456789"
CHROMIUM = "/usr/bin/chromium"
# As the machine's probe starts it: no sandbox (root), and nothing that reaches out to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "images" / "web"
ALICE = "alice@example.com"
BOB = "bob@example.com"


@dataclass(frozen=True)
class WebStack:
    url: str
    issuer: TestIssuer
    kubeconfig: pathlib.Path
    cluster: apiserver.ApiServerThread
    database_url: str

    def kubectl(self, *args: str) -> str:
        done = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), "-n", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def web_settings(issuer: TestIssuer, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "namespace": NAMESPACE,
        "jwks_url": f"{issuer.url}/jwks",
        "issuer": issuer.url,
        "audience": "todo-api",
        "dapr_app_token": SecretStr(APP_TOKEN),
        "web_oidc_issuer": issuer.url,
        "web_client_id": CLIENT_ID,
        **overrides,
    }
    return ApiSettings(**values)


@pytest.fixture(scope="session")
def web_stack(
    postgres_server: postgres.ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebStack]:
    require_tools("kubectl", CHROMIUM)
    database_url = postgres_server.create_database("web", template=TEMPLATE)
    port = postgres.free_port()
    url = f"http://127.0.0.1:{port}"
    with TestIssuer() as issuer, apiserver.ApiServerThread(crds=crds.all_crds()) as cluster:
        issuer.state.redirect_uris.add(f"{url}/sign-in/callback")
        kube = KubeClient(cluster.url)
        kube.create_namespace(NAMESPACE)
        kube.close()
        kubeconfig = cluster.write_kubeconfig(tmp_path_factory.mktemp("web") / "kubeconfig")
        with (
            DaprThread(app=App(url=url, token=APP_TOKEN)) as dapr,
            OperatorThread(
                operator_settings(database_url=database_url, api_url=cluster.url),
                relay_settings=RelaySettings(database_url=database_url, dapr_http_endpoint=dapr.url),
            ),
            RestApiThread(
                web_settings(issuer), database_url=database_url, kube_api_url=cluster.url, port=port
            ),
        ):
            yield WebStack(
                url=url, issuer=issuer, kubeconfig=kubeconfig, cluster=cluster, database_url=database_url
            )


# Per module, never longer: Playwright's sync API runs an event loop in this thread while it
# lives, and the rest of the suite's asyncio.run() calls would find it running.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


class Console:
    """What the page said in the console: errors fail the test that caused them."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._expected: list[str] = []

    def expect(self, text: str) -> None:
        """An error the test causes on purpose (a page it must not see answers 404)."""
        self._expected.append(text)

    def __call__(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(text in message.text for text in self._expected):
            self.errors.append(f"{message.text} at {message.location}")


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def new_page(browser: Browser, console: Console) -> Iterator[Any]:
    """``new_page()``: a page in a fresh browser context (its own cookies), in Berlin's zone."""
    contexts = []

    def make(*, zone: str = "Europe/Berlin", width: int = 1280) -> Page:
        context = browser.new_context(
            timezone_id=zone, viewport={"width": width, "height": 900}, locale="en-GB"
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", console)
        page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert console.errors == [], f"errors in the browser's console: {console.errors}"


def sign_in(page: Page, stack: WebStack, user: str, *, to: str = "/") -> None:
    """Through the page's button, the issuer's login form, and back."""
    page.goto(stack.url + to)
    page.get_by_role("link", name="Sign in with your organisation").click()
    page.get_by_label("E-mail").fill(user)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + to)
