"""OIDC tokens (RS256) checked against an issuer's JWKS, served over real HTTP on loopback."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from todo_operator.api import auth, problems
from todo_operator.api.settings import ApiSettings

ISSUER = "https://issuer.example.com"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return _key()


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    document = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's hook name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()


def _token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    body = {
        "sub": "alice@example.com",
        "aud": "todo-api",
        "iss": ISSUER,
        "exp": int(time.time()) + 600,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


async def test_a_token_signed_by_the_issuer_is_accepted(
    signing_key: rsa.RSAPrivateKey, jwks_url: str
) -> None:
    authenticator = auth.Authenticator(ApiSettings(jwks_url=jwks_url, issuer=ISSUER))
    user = await authenticator.authenticate(f"Bearer {_token(signing_key)}")
    assert user.id == "alice@example.com"


@pytest.mark.parametrize(
    ("claims", "other_key"),
    [({"iss": "https://evil.example.com"}, False), ({"exp": int(time.time()) - 3600}, False), ({}, True)],
    ids=["wrong-issuer", "expired", "signed-by-another-key"],
)
async def test_bad_tokens_are_refused(
    signing_key: rsa.RSAPrivateKey, jwks_url: str, claims: dict[str, Any], other_key: bool
) -> None:
    authenticator = auth.Authenticator(ApiSettings(jwks_url=jwks_url, issuer=ISSUER))
    token = _token(_key() if other_key else signing_key, **claims)
    with pytest.raises(problems.Problem) as refused:
        await authenticator.authenticate(f"Bearer {token}")
    assert refused.value.status == 401
