"""HS256 tokens and their times (issue #16): a maximum lifetime, and absurd claims refused with 401.

Tokens are assembled by hand where PyJWT would refuse to write them (a
string or ``Infinity`` as ``exp``): what an attacker sends is not limited to
what a library produces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from todo_operator.api import auth, problems
from todo_operator.api.settings import ApiSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
DAY = 86400


def _encoded(part: bytes) -> str:
    return base64.urlsafe_b64encode(part).rstrip(b"=").decode()


def _signed(claims_json: str) -> str:
    """An HS256 JWS over exactly these claim bytes (JSON as written, Infinity and all)."""
    signing_input = _encoded(b'{"alg":"HS256","typ":"JWT"}') + "." + _encoded(claims_json.encode())
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_encoded(signature)}"


def _claims(**times: Any) -> str:
    """The claims of a token of alice's, with ``times`` written verbatim (``"1e20"``, ``"NaN"``)."""
    fixed = '"sub": "alice@example.com", "aud": "todo-api"'
    return "{" + ", ".join([fixed, *(f'"{name}": {value}' for name, value in times.items())]) + "}"


def _authenticator(**settings: Any) -> auth.Authenticator:
    return auth.Authenticator(ApiSettings(jwt_secret=SECRET, **settings))


async def _refusal(token: str, **settings: Any) -> problems.Problem:
    with pytest.raises(problems.Problem) as refused:
        await _authenticator(**settings).authenticate(f"Bearer {token}")
    return refused.value


def test_the_lifetime_limit_defaults_to_a_day_and_is_bounded() -> None:
    assert ApiSettings(jwt_secret=SECRET).max_token_lifetime_seconds == DAY
    for refused in (0, 400 * DAY):
        with pytest.raises(ValidationError, match="max_token_lifetime_seconds"):
            ApiSettings(jwt_secret=SECRET, max_token_lifetime_seconds=refused)


async def test_a_token_living_as_long_as_allowed_is_accepted() -> None:
    now = int(time.time())
    for claims in (
        _claims(iat=now, exp=now + DAY),
        _claims(exp=now + DAY),
        _claims(iat=now - 10, exp=f"{now}.5e0"),
    ):
        user = await _authenticator().authenticate(f"Bearer {_signed(claims)}")
        assert user.id == "alice@example.com"


@pytest.mark.parametrize(
    "times",
    [
        lambda now: {"iat": now - 3600, "exp": now + DAY},  # issued an hour ago, for 25 hours
        lambda now: {"iat": now, "exp": now + DAY + 1},
        lambda now: {"exp": now + 2 * DAY},  # no iat: counted from now
        lambda now: {"exp": 10**20},
        lambda now: {"exp": "1e20"},
    ],
    ids=["issued-an-hour-ago", "iat-plus-a-day", "no-iat", "exp-10e20", "exp-float-1e20"],
)
async def test_a_token_living_longer_than_allowed_is_401(times: Callable[[int], dict[str, Any]]) -> None:
    problem = await _refusal(_signed(_claims(**times(int(time.time())))))
    assert problem.status == 401
    assert "lifetime" in problem.detail
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_lifetime_limit_is_a_setting() -> None:
    now = int(time.time())
    token = _signed(_claims(iat=now, exp=now + 7200))
    assert (await _refusal(token, max_token_lifetime_seconds=3600)).status == 401
    await _authenticator(max_token_lifetime_seconds=7200).authenticate(f"Bearer {token}")


@pytest.mark.parametrize(
    "times",
    [
        {"exp": '"99999999999"'},
        {"exp": '"soon"'},
        {"exp": "true"},
        {"exp": "null"},
        {"exp": "[]"},
        {"exp": "{}"},
        {"exp": "Infinity"},
        {"exp": "-Infinity"},
        {"exp": "NaN"},
        {"exp": "-100000000000000000000"},
        {"exp": "1" + "0" * 5000},
        {"exp": "NOW + 60", "iat": '"NOW"'},
        {"exp": "NOW + 60", "iat": "1e20"},
        {"exp": "NOW + 60", "iat": "NaN"},
        {"exp": "NOW + 60", "iat": "-1"},
        {"exp": "NOW + 60", "iat": "null"},
        {"exp": "NOW + 60", "nbf": "null"},
        {"exp": "NOW + 60", "iat": "true"},
        {"exp": "NOW + 60", "nbf": "1e20"},
        {"exp": "NOW + 60", "nbf": "-1e300"},
        {"exp": "NOW + 60", "nbf": '"NOW"'},
        {"exp": "NOW + 60", "nbf": "Infinity"},
    ],
    ids=lambda times: ",".join(f"{name}={value[:12]}" for name, value in times.items()),
)
async def test_absurd_times_are_401_never_500(times: dict[str, str]) -> None:
    now = int(time.time())
    written = {
        name: value.replace("NOW + 60", str(now + 60)).replace("NOW", str(now))
        for name, value in times.items()
    }
    problem = await _refusal(_signed(_claims(**written)))
    assert problem.status == 401, problem.detail
    assert problem.kind == "unauthorized"
