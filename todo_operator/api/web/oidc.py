"""OpenID Connect sign-in for the page: the authorization code flow with PKCE (S256), with Authlib.

The issuer's endpoints come from its discovery document, read once. The
page keeps no token: the access token answered for the code is checked by
the API's own :class:`~todo_operator.api.auth.Authenticator` (issuer,
audience, lifetime, the user claim as an e-mail address, the admin role),
and the session it opens carries only who that is. So the page grants what
a Bearer token grants, by the same rules, and a token that the API refuses
signs no one in. The exchange uses Authlib's ``requests`` client in a
thread (Authlib's async client needs ``httpx``, which this project does not
otherwise install); it happens once per sign-in.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2 as httpx
from authlib.integrations.requests_client import OAuth2Session

_TIMEOUT = 10.0


class SignInFailed(Exception):
    """The issuer did not give a token for the code (its words, for the page)."""


class OidcClient:
    def __init__(self, *, issuer: str, client_id: str, client_secret: str | None, scopes: str) -> None:
        self._issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = scopes
        self._metadata: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def issuer(self) -> str:
        return self._issuer

    async def _endpoints(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None:
                url = f"{self._issuer}/.well-known/openid-configuration"
                async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False) as client:
                    answer = await client.get(url)
                answer.raise_for_status()
                metadata = answer.json()
                # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer asked.
                if (
                    not isinstance(metadata, dict)
                    or str(metadata.get("issuer", "")).rstrip("/") != self._issuer
                ):
                    raise SignInFailed(f"the discovery document at {url} is not the issuer {self._issuer}'s")
                self._metadata = metadata
            return self._metadata

    def _session(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(
            client_id=self._client_id,
            client_secret=self._client_secret,
            # A public client (PKCE alone) authenticates to the token endpoint with nothing.
            token_endpoint_auth_method="client_secret_basic" if self._client_secret else "none",
            scope=self._scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )

    async def authorization_url(self, *, redirect_uri: str, state: str, code_verifier: str) -> str:
        endpoints = await self._endpoints()
        with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(
                endpoints["authorization_endpoint"], state=state, code_verifier=code_verifier
            )
        return str(url)

    async def access_token(self, *, code: str, redirect_uri: str, code_verifier: str) -> str:
        endpoints = await self._endpoints()

        def exchange() -> str:
            with self._session(redirect_uri) as session:
                token = session.fetch_token(
                    endpoints["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    timeout=_TIMEOUT,
                    allow_redirects=False,
                )
            access = token.get("access_token")
            if not isinstance(access, str):
                raise SignInFailed("the issuer answered no access token")
            return access

        try:
            return await asyncio.to_thread(exchange)
        except SignInFailed:
            raise
        except Exception as error:  # Authlib's OAuthError, requests' errors: the issuer said no
            raise SignInFailed(f"the issuer refused the sign-in: {error}") from None
