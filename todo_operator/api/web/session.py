"""Who is using the page: the session cookie, and the CSRF check on every change.

The cookie holds a random session id (the database holds its hash): HttpOnly,
SameSite=Lax, and Secure unless the page is served over plain HTTP on
loopback (the demo). Sign-in always opens a new session with a new id, so an
id planted before sign-in (session fixation) is never the one signed in.

Every POST carries the session's CSRF token (a form field, or the
``X-CSRF-Token`` header from the page's script), compared in constant time,
and, when the browser sends ``Origin``, that must be the page's own origin.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from todo_operator.api.auth import User
from todo_operator.api.web.live import LiveHub
from todo_operator.api.web.oidc import OidcClient
from todo_operator.store.web_sessions import WebSessions

SESSION_COOKIE = "todo_session"
SIGN_IN_COOKIE = "todo_sign_in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, kw_only=True)
class WebComponents:
    sessions: WebSessions
    oidc: OidcClient | None
    demo_user: str | None
    session_hours: int
    live: LiveHub


@dataclass(frozen=True, kw_only=True)
class PageUser:
    user: User
    csrf_token: str


class SignInNeeded(Exception):
    """No session (or an ended one): a page is answered with the sign-in page."""


class CsrfRefused(Exception):
    """A change without the session's CSRF token, or from another origin."""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cookies_secure(request: Request) -> bool:
    """Secure cookies unless the page is plain HTTP on loopback (a browser would not send them back)."""
    return request.url.scheme == "https" or not _is_loopback(request.url.hostname or "")


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=cookies_secure(request),
        samesite="lax",
    )


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, secure=cookies_secure(request), samesite="lax")


def check_csrf(request: Request, page_user: PageUser, *, sent: str | None) -> None:
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise CsrfRefused(f"a change from another origin ({origin}) is refused")
    if not sent or not hmac.compare_digest(sent.encode(), page_user.csrf_token.encode()):
        raise CsrfRefused("the form's CSRF token is missing or not this session's: reload the page")
