"""Signing in and out of the page: OIDC (code + PKCE), the demo's one click, and sign-out.

``GET /sign-in/oidc`` records the sign-in under way (the PKCE verifier, where
to go after) under the hash of a random ``state``, puts that state in a short
cookie and sends the browser to the issuer. ``GET /sign-in/callback`` takes
the record once, only with the same state in the cookie (so nobody can finish
a sign-in in someone else's browser), exchanges the code and opens a new
session.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

import jwt
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from todo_operator.api import problems
from todo_operator.api.deps import Components
from todo_operator.api.web import access, render
from todo_operator.api.web.oidc import SignInFailed
from todo_operator.api.web.session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    forget_cookie,
    new_secret,
    set_cookie,
)

router = APIRouter(include_in_schema=False)
_SIGN_IN_MINUTES = 10
ReturnTo = Annotated[str, Query(max_length=2000)]


def safe_return(path: str) -> str:
    """Where to go after sign-in: a path of this page, never another site (an open redirect)."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, components: Components, return_to: ReturnTo = "/") -> Response:
    web = components.web
    return render.page(
        request,
        "sign_in.html",
        None,
        title="Sign in",
        issuer=web.oidc.issuer if web.oidc else None,
        demo_user=web.demo_user,
        return_to=safe_return(return_to),
    )


def _callback_url(request: Request) -> str:
    return str(request.url_for("sign_in_callback"))


@router.get("/sign-in/oidc")
async def start_sign_in(request: Request, components: Components, return_to: ReturnTo = "/") -> Response:
    oidc = components.web.oidc
    if oidc is None:
        raise problems.Problem(404, "this page has no OIDC issuer to sign in with", kind="not-found")
    state, verifier = new_secret(), new_secret() + new_secret()  # RFC 7636: 43 to 128 characters
    now = components.clock.now()
    await components.web.sessions.begin_sign_in(
        state,
        code_verifier=verifier,
        return_to=safe_return(return_to),
        expires_at=now + timedelta(minutes=_SIGN_IN_MINUTES),
    )
    url = await oidc.authorization_url(
        redirect_uri=_callback_url(request), state=state, code_verifier=verifier
    )
    response = RedirectResponse(url, status_code=303)
    set_cookie(request, response, SIGN_IN_COOKIE, state, max_age=_SIGN_IN_MINUTES * 60)
    return response


@router.get("/sign-in/callback", name="sign_in_callback")
async def finish_sign_in(
    request: Request,
    components: Components,
    code: Annotated[str, Query(max_length=4096)] = "",
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    web = components.web
    if web.oidc is None:
        raise problems.Problem(404, "this page has no OIDC issuer to sign in with", kind="not-found")
    if error:
        return _sign_in_refused(request, f"the issuer said: {error}")
    if not state or request.cookies.get(SIGN_IN_COOKIE) != state:
        return _sign_in_refused(request, "this sign-in was not started in this browser: start again")
    pending = await web.sessions.take_sign_in(state, now=components.clock.now())
    if pending is None or not code:
        return _sign_in_refused(request, "this sign-in has expired or was already used: start again")
    try:
        token = await web.oidc.access_token(
            code=code, redirect_uri=_callback_url(request), code_verifier=pending.code_verifier
        )
        user = await components.authenticator.authenticate(f"Bearer {token}")
    except SignInFailed as refused:
        return _sign_in_refused(request, str(refused))
    except problems.Problem as refused:
        return _sign_in_refused(request, f"the issuer's token is not accepted here: {refused.detail}")
    # The session ends with the token it was opened with, or sooner (TODO_API_WEB_SESSION_HOURS).
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]  # checked just above
    response = await _open_session(
        request,
        components,
        owner=user.id,
        is_admin=user.is_admin,
        to=pending.return_to,
        token_expires=expires,
    )
    forget_cookie(request, response, SIGN_IN_COOKIE)
    return response


def _sign_in_refused(request: Request, why: str) -> Response:
    response = render.page(
        request, "sign_in_refused.html", None, title="Sign-in failed", why=why, status_code=400
    )
    forget_cookie(request, response, SIGN_IN_COOKIE)
    return response


async def _open_session(
    request: Request,
    components: Components,
    *,
    owner: str,
    is_admin: bool,
    to: str,
    token_expires: float | None = None,
) -> Response:
    """A new session (a new id, whatever cookie came in: no fixation) and its cookie."""
    now = components.clock.now()
    session_id = new_secret()
    lifetime = timedelta(hours=components.web.session_hours)
    if token_expires is not None:
        lifetime = min(lifetime, datetime.fromtimestamp(token_expires, tz=UTC) - now)
    await components.web.sessions.open(
        session_id,
        owner=owner,
        is_admin=is_admin,
        csrf_token=new_secret(),
        now=now,
        expires_at=now + lifetime,
    )
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await components.web.sessions.close(old)
    response = RedirectResponse(safe_return(to), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, session_id, max_age=int(lifetime.total_seconds()))
    return response


@router.post("/sign-in/demo")
async def demo_sign_in(request: Request, components: Components, return_to: ReturnTo = "/") -> Response:
    demo_user = components.web.demo_user
    if demo_user is None:
        raise problems.Problem(404, "this page has no demo sign-in", kind="not-found")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise problems.Problem(403, "a sign-in from another origin is refused", kind="forbidden")
    return await _open_session(request, components, owner=demo_user, is_admin=False, to=return_to)


@router.post("/sign-out")
async def sign_out(request: Request, components: Components) -> Response:
    page_user = await access.page_user(request, components)
    await access.checked_form(request, page_user)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    await components.web.sessions.close(session_id)
    response = RedirectResponse("/sign-in", status_code=303)
    forget_cookie(request, response, SESSION_COOKIE)
    return response
