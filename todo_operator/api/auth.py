"""Who is calling: Bearer JWTs, checked against a shared secret or an OIDC issuer's keys.

The user's id (``sub`` by default, ``TODO_API_USER_CLAIM``) becomes the
``owner`` of everything they create: users never choose the owner. It must
be an e-mail address because ``spec.owner`` is one (reminders are mailed to
it). Only the algorithms of the configured key source are accepted — HS256
for a secret, asymmetric ones for a JWKS — so ``alg: none`` and the
HS256-with-a-public-key confusion are refused by construction.

A token's times are RFC 7519 NumericDates: JSON numbers of seconds since
1970, finite and not negative. PyJWT also takes strings of digits; here
they are refused. And a token may not live longer than
``TODO_API_MAX_TOKEN_LIFETIME_SECONDS`` (``exp - iat``, or ``exp - now``
without ``iat``): a token made by hand with ``exp`` in the year 3 billion,
or by an issuer set up wrongly, would otherwise never expire.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from todo_operator.api import problems
from todo_operator.api.settings import ApiSettings
from todo_operator.domain import resources

_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384", "PS512", "EdDSA"]
_MAX_TOKEN_LENGTH = 8192
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="todo-operator"'}
_TIMES = ("exp", "iat", "nbf")


@dataclass(frozen=True, kw_only=True)
class User:
    id: str
    is_admin: bool


def _unauthorized(detail: str) -> problems.Problem:
    return problems.Problem(401, detail, kind="unauthorized", headers=_CHALLENGE)


def _check_times(claims: Mapping[str, Any], *, max_lifetime: int, leeway: int, now: float) -> None:
    """401 unless every time is a NumericDate and the token lives at most ``max_lifetime`` seconds."""
    for name in _TIMES:
        value = claims.get(name)
        if name in claims and not (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf
        ):
            raise _unauthorized(f"the token's {name!r} claim is not a time (RFC 7519 NumericDate)")
    expires, issued = claims["exp"], claims.get("iat")
    # Without iat, counted from now; allowing the clock skew, as the issuer's now may be ahead of ours.
    lifetime = expires - issued if issued is not None else expires - now - leeway
    if lifetime > max_lifetime:
        raise _unauthorized(
            f"the token's lifetime (exp - {'iat' if issued is not None else 'now'}) is longer than the"
            f" {max_lifetime} seconds this API accepts: ask the issuer for a shorter-lived token"
        )


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def has_role(claims: Mapping[str, Any], *, path: str, role: str) -> bool:
    value = claim_at(claims, path)
    if isinstance(value, str):
        return role in value.split()  # a space-separated list, as OAuth scopes are written
    return isinstance(value, list) and role in value


class Authenticator:
    def __init__(self, settings: ApiSettings) -> None:
        self._settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=5)
            if settings.jwks_url
            else None
        )

    async def _key(self, token: str) -> tuple[Any, list[str]]:
        if self._jwks is None:
            assert self._settings.jwt_secret is not None  # the settings require one of the two
            return self._settings.jwt_secret.get_secret_value(), ["HS256"]
        try:
            # PyJWKClient fetches with urllib (blocking); keys are cached, so this is rare.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as error:
            raise problems.Problem(503, f"the token issuer's keys are unreachable: {error}") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as error:
            raise _unauthorized(f"the token is invalid: {error}") from None
        return signing_key.key, _ASYMMETRIC

    async def authenticate(self, authorization: str | None) -> User:
        if not authorization:
            raise _unauthorized("this endpoint needs a Bearer token (Authorization: Bearer <JWT>)")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header must be 'Bearer <JWT>'")
        if len(token) > _MAX_TOKEN_LENGTH:
            raise _unauthorized("the token is too long")
        key, algorithms = await self._key(token)
        settings = self._settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp"], "verify_aud": settings.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as error:
            raise _unauthorized(f"the token is invalid: {error}") from None
        # PyJWT reads exp/iat/nbf with the process clock, so the lifetime is counted on the same one.
        _check_times(
            claims,
            max_lifetime=settings.max_token_lifetime_seconds,
            leeway=settings.leeway_seconds,
            now=time.time(),
        )
        user = claim_at(claims, settings.user_claim)
        if not isinstance(user, str) or not re.fullmatch(resources.EMAIL_PATTERN, user) or len(user) > 254:
            raise problems.Problem(
                403,
                f"the token's {settings.user_claim!r} claim must be the user's e-mail address",
                kind="forbidden",
            )
        admin = has_role(claims, path=settings.admin_role_claim, role=settings.admin_role)
        return User(id=user, is_admin=admin)
