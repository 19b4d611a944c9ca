"""An OpenID Connect issuer for the page's tests, over real HTTP on loopback.

It implements the parts of OpenID Connect Core 1.0 and RFC 7636 that the page
uses, strictly: discovery, an authorization endpoint that shows a login form
(the browser types the user's e-mail, as at a real issuer) and refuses a
request without an S256 code challenge or with an unregistered redirect URI,
a token endpoint that hands out each code once, only to the client and
redirect URI it was issued for and only with the verifier that matches the
challenge, and a JWKS. Access tokens are RS256 JWTs for the API's audience.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "todo-web"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    user: str


@dataclass
class IssuerState:
    url: str = ""
    redirect_uris: set[str] = field(default_factory=set)
    audience: str = "todo-api"
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def access_token(self, user: str, *, audience: str | None = None, ttl: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": user,
            "aud": audience or self.audience,
            "iat": now,
            "exp": now + ttl,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "web-test"})


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class _Handler(http.server.BaseHTTPRequestHandler):
    state: IssuerState  # set on the subclass per server

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        return None

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def do_GET(self) -> None:  # http.server's hook name
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        base = self.state.url
        if parts.path == "/.well-known/openid-configuration":
            self._json(
                200,
                {
                    "issuer": base,
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "jwks_uri": f"{base}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                },
            )
        elif parts.path == "/jwks":
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.state.key.public_key()))
            self._json(200, {"keys": [{**public, "kid": "web-test", "use": "sig", "alg": "RS256"}]})
        elif parts.path == "/authorize":
            self._authorize(query)
        else:
            self._send(404, b"not found", "text/plain")

    def _authorize(self, query: dict[str, str]) -> None:
        problem = None
        if query.get("client_id") != CLIENT_ID:
            problem = "unknown client"
        elif query.get("redirect_uri") not in self.state.redirect_uris:
            problem = "redirect_uri not registered"
        elif query.get("response_type") != "code":
            problem = "response_type must be code"
        elif query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) != 43:
            problem = "PKCE with S256 is required"
        elif "openid" not in query.get("scope", "").split():
            problem = "scope must include openid"
        if problem:
            self._send(400, problem.encode(), "text/plain")
            return
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        page = (
            '<!doctype html><html lang="en"><title>Test issuer</title><link rel="icon" href="data:,">'
            f'<main><h1>Test issuer</h1><form method="post" action="/login">{hidden}'
            '<label for="email">E-mail</label><input id="email" name="email" type="email">'
            '<button type="submit">Sign in</button></form></main></html>'
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def do_POST(self) -> None:  # http.server's hook name
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        if self.path == "/login":
            code = secrets.token_urlsafe(24)
            self.state.grants[code] = Grant(
                client_id=form["client_id"],
                redirect_uri=form["redirect_uri"],
                challenge=form["code_challenge"],
                user=form["email"],
            )
            target = f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form.get('state', '')})}"
            self._send(302, b"", "text/plain", {"Location": target})
        elif self.path == "/token":
            self._token(form)
        else:
            self._send(404, b"not found", "text/plain")

    def _token(self, form: dict[str, str]) -> None:
        self.state.token_requests.append(form)
        grant = self.state.grants.pop(form.get("code", ""), None)  # a code is good once
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or form.get("client_id") != grant.client_id
            or form.get("redirect_uri") != grant.redirect_uri
            or _s256(form.get("code_verifier", "")) != grant.challenge
        ):
            self._json(400, {"error": "invalid_grant"})
            return
        token = self.state.access_token(grant.user)
        self._json(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "id_token": token}
        )


class TestIssuer:
    def __init__(self) -> None:
        self.state = IssuerState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.state.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.state.url

    def __enter__(self) -> TestIssuer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
