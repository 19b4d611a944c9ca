"""Signing in over HTTP, as an attacker would try it: each step refused unless it is the user's own."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest

from tests.api.web.conftest import ALICE, WebStack


def start(client: httpx.Client, return_to: str = "/") -> tuple[str, dict[str, str]]:
    """The page's redirect to the issuer: its URL and the parameters it asks with."""
    answer = client.get("/sign-in/oidc", params={"return_to": return_to})
    assert answer.status_code == 303
    location = answer.headers["location"]
    return location, {key: value[0] for key, value in parse_qs(urlsplit(location).query).items()}


def log_in_at_issuer(stack: WebStack, asked: dict[str, str], user: str = ALICE) -> str:
    """The issuer's login form posted: the callback URL it redirects to."""
    with httpx.Client(base_url=stack.issuer.url) as issuer:
        answer = issuer.post("/login", data={**asked, "email": user})
    assert answer.status_code == 302
    return answer.headers["location"]


@pytest.fixture
def browser_like(web_stack: WebStack) -> httpx.Client:
    return httpx.Client(base_url=web_stack.url, timeout=20, follow_redirects=False)


def test_the_authorization_request_uses_pkce_s256_and_a_fresh_state(
    web_stack: WebStack, browser_like: httpx.Client
) -> None:
    _, first = start(browser_like)
    _, second = start(browser_like)
    assert first["code_challenge_method"] == "S256"
    assert first["response_type"] == "code"
    assert first["redirect_uri"] == f"{web_stack.url}/sign-in/callback"
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]
    cookie = browser_like.cookies.get("todo_sign_in")
    assert cookie == second["state"]


def test_a_callback_in_another_browser_is_refused(web_stack: WebStack, browser_like: httpx.Client) -> None:
    _, asked = start(browser_like)
    callback = log_in_at_issuer(web_stack, asked)
    with httpx.Client(timeout=20) as other_browser:  # no sign-in cookie: login CSRF
        answer = other_browser.get(callback)
    assert answer.status_code == 400
    assert "not started in this browser" in answer.text
    assert "todo_session" not in answer.headers.get("set-cookie", "")


def test_a_callback_is_good_once(web_stack: WebStack, browser_like: httpx.Client) -> None:
    _, asked = start(browser_like)
    callback = log_in_at_issuer(web_stack, asked)
    state_cookie = browser_like.cookies.get("todo_sign_in")
    first = browser_like.get(callback)
    assert first.status_code == 303
    assert first.headers["location"] == "/"
    browser_like.cookies.set("todo_sign_in", state_cookie or "")
    again = browser_like.get(callback)
    assert again.status_code == 400
    assert "expired or was already used" in again.text


def test_a_code_exchanged_without_its_verifier_signs_no_one_in(
    web_stack: WebStack, browser_like: httpx.Client
) -> None:
    _, asked = start(browser_like)
    forged = {
        **asked,
        "code_challenge": "A" * 43,
    }  # an attacker's challenge: the page's verifier cannot match
    callback = log_in_at_issuer(web_stack, forged)
    answer = browser_like.get(callback)
    assert answer.status_code == 400
    assert "issuer refused" in answer.text
    assert web_stack.issuer.state.token_requests[-1]["code_verifier"]


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_after_sign_in_the_page_never_sends_you_to_another_site(
    web_stack: WebStack, browser_like: httpx.Client, target: str
) -> None:
    _, asked = start(browser_like, return_to=target)
    answer = browser_like.get(log_in_at_issuer(web_stack, asked))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_a_token_the_api_would_refuse_signs_no_one_in(
    web_stack: WebStack, browser_like: httpx.Client
) -> None:
    _, asked = start(browser_like)
    answer = browser_like.get(log_in_at_issuer(web_stack, asked, user="not-an-email"))
    assert answer.status_code == 400
    assert re.search(r"not accepted here: .*e-mail address", answer.text)


def test_an_issuer_error_is_shown_not_followed(web_stack: WebStack, browser_like: httpx.Client) -> None:
    _, asked = start(browser_like)
    answer = browser_like.get("/sign-in/callback", params={"error": "access_denied", "state": asked["state"]})
    assert answer.status_code == 400
    assert "access_denied" in answer.text


def test_session_cookies_are_secure_off_loopback(web_stack: WebStack) -> None:
    # The same page reached by a name that is not loopback (as behind an ingress): Secure cookies.
    with httpx.Client(base_url=web_stack.url, headers={"Host": "todo.example.com"}) as proxied:
        answer = proxied.get("/sign-in/oidc")
    assert "Secure" in answer.headers["set-cookie"]
    with httpx.Client(base_url=web_stack.url) as local:
        assert "Secure" not in local.get("/sign-in/oidc").headers["set-cookie"]


def test_a_session_ends_with_the_token_it_was_opened_with(
    web_stack: WebStack, browser_like: httpx.Client
) -> None:
    _, asked = start(browser_like)
    answer = browser_like.get(log_in_at_issuer(web_stack, asked))
    max_age = int(re.search(r"todo_session=[^;]+;.*?Max-Age=(\d+)", answer.headers["set-cookie"]).group(1))  # type: ignore[union-attr]
    assert 3500 <= max_age <= 3600  # the issuer's token lives an hour; the setting allows eight


def test_the_pages_changes_count_against_the_users_writes_per_minute(
    web_stack: WebStack, browser_like: httpx.Client
) -> None:
    # A user of their own: the limit is per user (100 a minute by default), and the other tests' users write.
    _, asked = start(browser_like)
    browser_like.get(log_in_at_issuer(web_stack, asked, user="carol@example.com"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser_like.get("/").text).group(1)  # type: ignore[union-attr]
    answers = [
        browser_like.post("/tasks/nothing-here/complete", data={"csrf_token": token}) for _ in range(101)
    ]
    assert {answer.status_code for answer in answers[:100]} == {404}  # counted, then refused: no such task
    assert answers[100].status_code == 429
    assert "at most 100 writes per minute" in answers[100].text
