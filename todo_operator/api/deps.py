"""Route dependencies as ``Annotated`` aliases: ``user: CurrentUser``, ``components: Components``.

Everything the routes need was built once by the app factory and hangs off
``app.state.components`` (one typed dataclass, not a loose bag).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from todo_operator import kube
from todo_operator.api import auth, problems, ratelimit, services
from todo_operator.api.settings import ApiSettings
from todo_operator.api.web.session import WebComponents
from todo_operator.clock import Clock
from todo_operator.store import repository


@dataclass(frozen=True, kw_only=True)
class AppComponents:
    settings: ApiSettings
    clock: Clock
    pool: repository.Pool
    kube: kube.Kube
    authenticator: auth.Authenticator
    limiter: ratelimit.WriteLimiter
    preview_limiter: ratelimit.WriteLimiter
    tasks: services.Tasks
    recurring_tasks: services.RecurringTasks
    reminders: services.Reminders
    activity: services.Activity
    web: WebComponents


def _components(request: Request) -> AppComponents:
    found: AppComponents = request.app.state.components
    return found


Components = Annotated[AppComponents, Depends(_components)]


# Declares the scheme in the OpenAPI document (components.securitySchemes, and a security
# requirement on every operation that needs a user), so Swagger UI has its Authorize button
# and generated clients send the token. The header itself is read below: the authenticator
# says precisely what is wrong with it, where HTTPBearer would only answer 403.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A JWT: HS256 with the shared secret, or RS256/ES256 from the OIDC issuer (docs/API.md).",
)


async def current_user(
    components: Components,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> auth.User:
    return await components.authenticator.authenticate(authorization)


CurrentUser = Annotated[auth.User, Depends(current_user)]


def admin_user(user: CurrentUser, components: Components) -> auth.User:
    if not user.is_admin:
        raise problems.Problem(
            403, f"this needs the {components.settings.admin_role!r} role", kind="forbidden"
        )
    return user


AdminUser = Annotated[auth.User, Depends(admin_user)]


def writer(user: CurrentUser, components: Components) -> auth.User:
    """The caller of a write, counted against their per-minute limit."""
    components.limiter.check(user.id, now=components.clock.now())
    return user


WritingUser = Annotated[auth.User, Depends(writer)]


def previewer(user: CurrentUser, components: Components) -> auth.User:
    """The caller of a schedule preview: nothing is written, but a schedule can cost seconds of CPU."""
    components.preview_limiter.check(user.id, now=components.clock.now())
    return user


PreviewingUser = Annotated[auth.User, Depends(previewer)]


def page_size(components: Components, limit: Annotated[int | None, Query(ge=1, le=1000)] = None) -> int:
    if limit is None:
        return components.settings.default_page_size
    if limit > components.settings.max_page_size:
        raise problems.Problem(
            422,
            f"limit must be at most {components.settings.max_page_size}",
            errors=[problems.FieldError(field="limit", message="page too large")],
        )
    return limit


PageSize = Annotated[int, Depends(page_size)]
Cursor = Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")]
IfMatch = Annotated[str | None, Header(max_length=256, description="an ETag from a previous read")]


def _pool(components: Components) -> repository.Pool:
    return components.pool


def _kube(components: Components) -> kube.Kube:
    return components.kube


DbPool = Annotated[repository.Pool, Depends(_pool)]
Kube = Annotated[kube.Kube, Depends(_kube)]
