"""The REST shim's settings (``TODO_API_*``), loaded by the app factory, never at import.

Everything a deployment tunes lives here: the one namespace the shim works
in, how tokens are checked, and the limits that keep one user from hurting
the others. The database and API-server addresses are the operator's own
variables (``TODO_DATABASE_URL``, ``TODO_KUBE_API_URL``): :class:`Connections`,
read by the ``todo-operator api`` command, not by the app: the app is handed
a pool and a Kubernetes client, so tests and the demo can give it theirs.
"""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from todo_operator.domain import resources


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_API_", extra="ignore")

    namespace: str = Field(default="default", min_length=1, max_length=63, description="where objects live")
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 shared secret")
    jwks_url: str | None = Field(default=None, description="an OIDC issuer's JWKS (RS256/ES256 tokens)")
    issuer: str | None = Field(default=None, description="required `iss` claim (None: not checked)")
    audience: str | None = Field(default="todo-api", description="required `aud` claim (None: not checked)")
    user_claim: str = Field(default="sub", description="the claim naming the user (an e-mail address)")
    admin_role_claim: str = Field(
        default="roles", description="claim holding the roles (dotted path, e.g. realm_access.roles)"
    )
    admin_role: str = Field(default="todo-admin", description="the role that may use /api/v1/admin")
    leeway_seconds: int = Field(default=30, ge=0, le=300, description="clock skew allowed on exp/nbf")
    # A stolen token is good until it expires: an issuer's mistake (or a hand-made token with exp
    # 10^20) must not make that forever.
    max_token_lifetime_seconds: int = Field(
        default=86400,
        ge=60,
        le=366 * 86400,
        description="tokens valid for longer are refused (401): exp - iat, or exp - now when iat is absent",
    )
    cursor_secret: SecretStr | None = Field(
        default=None,
        description="signs page cursors; default: derived from the JWT secret (set it with JWKS + replicas)",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="larger request bodies are answered 413"
    )
    max_page_size: int = Field(default=200, ge=1, le=1000, description="the largest `limit` a list accepts")
    default_page_size: int = Field(default=50, ge=1, le=1000, description="a list's page without `limit`")
    writes_per_minute: int = Field(default=100, ge=1, le=100_000, description="per user, per replica")
    previews_per_minute: int = Field(
        default=60, ge=1, le=100_000, description="schedule previews per user, per replica"
    )
    preview_max_occurrences: int = Field(
        default=100, ge=1, le=1000, description="the largest `count` of a schedule preview"
    )
    dapr_pubsub: str = Field(default="pubsub", description="the Dapr pub/sub component to subscribe on")
    dapr_live_pubsub: str | None = Field(
        default=None,
        description="the Dapr pub/sub component the API reads task-updates on, for the page's live updates:"
        ' every replica must get every update (Kafka: consumerID "{podName}", manifests/dapr);'
        " unset: TODO_API_DAPR_PUBSUB",
    )
    dapr_app_token: SecretStr | None = Field(
        default=None,
        description="Dapr's app API token: deliveries to /events/* must carry it in the dapr-api-token"
        " header; unset, every delivery is refused (401)",
    )
    # Fail closed: without a token anyone who reaches the API could write into any user's feed,
    # so accepting that takes a setting whose name says what it is.
    dapr_insecure_allow_unauthenticated: bool = Field(
        default=False,
        description="accept deliveries to /events/* without an app token, from anyone who reaches the API"
        " (a local demo only; refused together with TODO_API_DAPR_APP_TOKEN)",
    )
    # The schedule engine has two threads: one job per user leaves the other to everyone else.
    engine_jobs_per_user: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="schedule computations (preview, compile, upcoming occurrences) one user may have"
        " queued or running in the schedule engine at once, per replica; more are answered 429",
    )
    engine_queue: int = Field(
        default=16,
        ge=1,
        le=100_000,
        description="schedule computations queued or running in the schedule engine at once, all users"
        " together, per replica; more are answered 503",
    )

    # The web page (docs/WEB.md): OpenID Connect sign-in (authorization code with PKCE) against the
    # issuer whose tokens the API already trusts; the access token it answers is checked by the
    # same rules as a Bearer token, so the page grants what the API grants and nothing more.
    web_oidc_issuer: str | None = Field(
        default=None,
        description="the OIDC issuer the page signs users in with (its /.well-known/openid-configuration"
        " is read); unset: no OIDC sign-in",
    )
    web_client_id: str | None = Field(default=None, description="the page's OIDC client id (with the issuer)")
    web_client_secret: SecretStr | None = Field(
        default=None, description="the page's OIDC client secret; unset: a public client (PKCE alone)"
    )
    web_scopes: str = Field(
        default="openid email",
        min_length=6,
        max_length=500,
        description="the scopes the page asks for (space-separated; must include openid)",
    )
    web_session_hours: int = Field(
        default=8, ge=1, le=168, description="a page session ends this long after sign-in, or with the token"
    )
    web_insecure_sign_in_as: str | None = Field(
        default=None,
        description="a one-click sign-in as this e-mail address, without any issuer (a local demo only;"
        " anyone who reaches the page is then this user)",
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough_for_hs256(cls, secret: SecretStr | None) -> SecretStr | None:
        # RFC 7518 section 3.2: an HS256 key MUST be at least as long as the hash, 256 bits.
        if secret is not None and len(secret.get_secret_value().encode()) < 32:
            raise ValueError("an HS256 secret must be at least 32 bytes (RFC 7518, section 3.2)")
        return secret

    @field_validator("dapr_app_token")
    @classmethod
    def _not_empty(cls, token: SecretStr | None) -> SecretStr | None:
        # An empty token would be matched by an empty (or absent) dapr-api-token header.
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("TODO_API_DAPR_APP_TOKEN is empty: set the sidecar's token, or leave it unset")
        return token

    @model_validator(mode="after")
    def _one_way_to_take_deliveries(self) -> ApiSettings:
        if self.dapr_app_token is not None and self.dapr_insecure_allow_unauthenticated:
            raise ValueError(
                "set TODO_API_DAPR_APP_TOKEN or TODO_API_DAPR_INSECURE_ALLOW_UNAUTHENTICATED, not both"
            )
        return self

    @model_validator(mode="after")
    def _web_sign_in(self) -> ApiSettings:
        if (self.web_oidc_issuer is None) != (self.web_client_id is None):
            raise ValueError("set TODO_API_WEB_OIDC_ISSUER and TODO_API_WEB_CLIENT_ID together")
        if "openid" not in self.web_scopes.split():
            raise ValueError("TODO_API_WEB_SCOPES must include openid")
        demo_user = self.web_insecure_sign_in_as
        if demo_user is not None and not re.fullmatch(resources.EMAIL_PATTERN, demo_user):
            raise ValueError("TODO_API_WEB_INSECURE_SIGN_IN_AS must be an e-mail address")
        return self

    @model_validator(mode="after")
    def _one_key_source(self) -> ApiSettings:
        if (self.jwt_secret is None) == (self.jwks_url is None):
            raise ValueError("set exactly one of TODO_API_JWT_SECRET or TODO_API_JWKS_URL")
        if self.default_page_size > self.max_page_size:
            raise ValueError("TODO_API_DEFAULT_PAGE_SIZE must not exceed TODO_API_MAX_PAGE_SIZE")
        return self


class Connections(BaseSettings):
    """The operator's variables the API reads too (public: the settings registry lists them)."""

    model_config = SettingsConfigDict(env_prefix="TODO_", extra="ignore")

    database_url: str = Field(description="PostgreSQL DSN")
    kube_api_url: str | None = Field(
        default=None, description="the API server to talk to; default: kubeconfig or in-cluster"
    )
