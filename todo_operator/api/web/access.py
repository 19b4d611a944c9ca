"""The page's user for a request, and a posted form read only after its CSRF token is checked."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from todo_operator.api.auth import User
from todo_operator.api.deps import Components
from todo_operator.api.web import forms
from todo_operator.api.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    CsrfRefused,
    PageUser,
    SignInNeeded,
    check_csrf,
)

_MAX_FIELDS = 200


async def page_user(request: Request, components: Components) -> PageUser:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise SignInNeeded
    found = await components.web.sessions.find(session_id, now=components.clock.now())
    if found is None:
        raise SignInNeeded
    return PageUser(user=User(id=found.owner, is_admin=found.is_admin), csrf_token=found.csrf_token)


SignedIn = Annotated[PageUser, Depends(page_user)]


async def checked_form(request: Request, signed_in: PageUser) -> forms.Values:
    """The posted form (URL-encoded), after the CSRF check: nothing is read from a forged one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and content_type != "application/x-www-form-urlencoded":
        raise CsrfRefused("the page posts forms URL-encoded only")
    try:
        pairs = parse_qsl(
            body.decode(), keep_blank_values=True, max_num_fields=_MAX_FIELDS, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise CsrfRefused("the form could not be read") from None
    values = forms.Values(pairs)
    check_csrf(request, signed_in, sent=values.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER))
    return values


async def checked_write(request: Request, signed_in: PageUser, components: Components) -> forms.Values:
    """A change's form, checked, and counted against the user's writes per minute, as the API counts them."""
    values = await checked_form(request, signed_in)
    components.limiter.check(signed_in.user.id, now=components.clock.now())
    return values
