"""The composition root of the REST shim: ``create_app(settings, kube_api=..., pool=..., clock=...)``.

One factory builds every component from the settings and what it is handed
(the pool, the Kubernetes client, the clock): the command, the tests and the
benchmark each pass their own, and nothing is built at import. Here too:
the translation of every error into an RFC 9457 problem — the project's
errors (Kubernetes, PostgreSQL, validation) each to its status — and the
two limits that act before a route runs (body size, and the metrics).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_operator import kube
from todo_operator.api import auth, deps, errors, problems, ratelimit, services, translation
from todo_operator.api.routers import (
    activity,
    admin,
    dapr,
    health,
    recurring_tasks,
    reminders,
    schedules,
    tasks,
)
from todo_operator.api.settings import ApiSettings
from todo_operator.api.web import live, oidc, session, site
from todo_operator.clock import Clock
from todo_operator.schedule_engine import EngineBusy, ScheduleEngine
from todo_operator.store import queries, repository, web_sessions
from todo_operator.telemetry import metrics

logger = logging.getLogger(__name__)


def _problem_response(request: Request, problem: problems.Problem) -> JSONResponse:
    document = problem.document(instance=request.url.path)
    return JSONResponse(
        document.model_dump(),
        status_code=problem.status,
        media_type=problems.MEDIA_TYPE,
        headers=problem.headers,
    )


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether announced or streamed.

    The body is read here, whole, before the app sees any of it: a body
    streamed without Content-Length is counted as it arrives, and refused
    the moment it passes the limit, before a route has started to parse it.
    (Raising from inside the app's ``receive`` instead turned into FastAPI's
    400 "error parsing the body", or a 500 and two tracebacks on routes that
    read the body themselves.) The app is then handed the body in one piece.
    The limit is small (64 KiB by default), and every route reads its body
    whole anyway.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._limit):
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away (http.disconnect): nobody to answer
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self._limit:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self._app(scope, _replaying(b"".join(chunks), then=receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        problem = problems.Problem(413, f"the request body is larger than {self._limit} bytes")
        body = problem.document(instance=scope.get("path", "")).model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", problems.MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replaying(body: bytes, *, then: Receive) -> Receive:
    """A ``receive`` that gives the body read in one message, then what the server sends (a disconnect)."""
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            return await then()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _metrics(app: FastAPI) -> None:
    """Request counts and latencies per route template, on the app's own registry."""
    measured = metrics.ApiMetrics(metrics.new_registry())

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        measured.latency.labels(request.method, route).observe(time.perf_counter() - started)
        measured.requests.labels(request.method, route, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        body, content_type = metrics.exposition(measured.registry)
        return Response(body, headers={"Content-Type": content_type})


def _cursor_secret(settings: ApiSettings) -> bytes:
    if settings.cursor_secret is not None:
        return settings.cursor_secret.get_secret_value().encode()
    if settings.jwt_secret is not None:
        return hashlib.sha256(
            b"todo-api-cursor\x00" + settings.jwt_secret.get_secret_value().encode()
        ).digest()
    # JWKS without a cursor secret: cursors are valid in this process only (documented).
    return secrets.token_bytes(32)


def _log_how_deliveries_are_checked(settings: ApiSettings) -> None:
    if settings.dapr_insecure_allow_unauthenticated:
        logger.warning(
            "TODO_API_DAPR_INSECURE_ALLOW_UNAUTHENTICATED is on: /events/* accepts deliveries without"
            " Dapr's app token, from anyone who reaches the API, who can so write into any user's"
            " activity feed. Set TODO_API_DAPR_APP_TOKEN instead, outside a local demo."
        )
    elif settings.dapr_app_token is None:
        logger.info("no TODO_API_DAPR_APP_TOKEN: /events/* refuses every delivery (401)")


def _document_problems(app: FastAPI) -> None:
    """Put the error answers' schema in the OpenAPI document.

    Routes name it by reference (``problems.responses``: ``#/components/schemas/ProblemDocument``),
    but FastAPI registers only the models of success answers: without this the reference
    dangles, and a generated client leaves every error answer out.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()  # FastAPI keeps it as app.openapi_schema: completed in place
            schema = problems.ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update({**schema.pop("$defs", {}), "ProblemDocument": schema})
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document


def _answer_errors_as_problems(app: FastAPI) -> None:
    """Every error an RFC 9457 problem: ours mapped at this edge, anything else a 500 without details."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return _problem_response(request, problems.from_validation_errors(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        problem = problems.Problem(error.status_code, str(error.detail), headers=error.headers)
        if site.is_page(request) and request.method == "GET":
            return site.error_page(request, problem)
        return _problem_response(request, problem)

    async def known_error(request: Request, error: Exception) -> Response:
        if site.is_page(request):
            return site.error_page(request, translation.translate(error))
        return _problem_response(request, translation.translate(error))

    # Our own errors are answered by the exception middleware (no traceback, no re-raise).
    for error_type in (
        problems.Problem,
        errors.Refused,
        kube.KubeError,
        psycopg.Error,
        OverflowError,
        EngineBusy,
    ):
        app.add_exception_handler(error_type, known_error)

    @app.exception_handler(Exception)
    async def any_error(request: Request, error: Exception) -> JSONResponse:
        problem = translation.translate(error)
        if problem.status >= 500 and problem.status != 503:
            logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
        return _problem_response(request, problem)


def _web(settings: ApiSettings, pool: repository.Pool) -> session.WebComponents:
    client = None
    if settings.web_oidc_issuer is not None and settings.web_client_id is not None:
        secret = settings.web_client_secret.get_secret_value() if settings.web_client_secret else None
        client = oidc.OidcClient(
            issuer=settings.web_oidc_issuer,
            client_id=settings.web_client_id,
            client_secret=secret,
            scopes=settings.web_scopes,
        )
    if settings.web_insecure_sign_in_as is not None:
        logger.warning(
            "TODO_API_WEB_INSECURE_SIGN_IN_AS is set: anyone who reaches the page can sign in as %s"
            " with one click. A local demo only.",
            settings.web_insecure_sign_in_as,
        )
    return session.WebComponents(
        sessions=web_sessions.WebSessions(pool),
        oidc=client,
        demo_user=settings.web_insecure_sign_in_as,
        session_hours=settings.web_session_hours,
        live=live.LiveHub(),
    )


def create_app(
    settings: ApiSettings | None = None,
    *,
    kube_api: kube.Kube,
    pool: repository.Pool,
    clock: Clock,
    schedule_engine: ScheduleEngine | None = None,
) -> FastAPI:
    settings = settings if settings is not None else ApiSettings()
    _log_how_deliveries_are_checked(settings)
    pager = services.Pager(secret=_cursor_secret(settings))
    engine = (
        schedule_engine
        if schedule_engine is not None
        else ScheduleEngine(jobs_per_owner=settings.engine_jobs_per_user, max_jobs=settings.engine_queue)
    )
    objects = services.Objects(kube=kube_api, settings=settings)
    reads = queries.Queries(pool)
    # Swagger UI (/docs) and ReDoc (/redoc) from assets that ship with fastapi-offline: the
    # page works in an air-gapped cluster, where a CDN is out of reach.
    app = FastAPIOffline(
        # operationId = the route's function name (create_task, list_occurrences ...): what a
        # generated client calls its functions.
        generate_unique_id_function=lambda route: route.name,
        title="todo-operator REST API",
        version="v1",
        description="Tasks, recurring tasks and reminders of the calling user. Errors are RFC 9457 problems.",
    )
    app.state.components = deps.AppComponents(
        settings=settings,
        clock=clock,
        pool=pool,
        kube=kube_api,
        authenticator=auth.Authenticator(settings),
        limiter=ratelimit.WriteLimiter(limit=settings.writes_per_minute),
        preview_limiter=ratelimit.WriteLimiter(limit=settings.previews_per_minute, what="schedule previews"),
        tasks=services.Tasks(objects=objects, reads=reads, clock=clock, pager=pager, settings=settings),
        recurring_tasks=services.RecurringTasks(
            objects=objects, reads=reads, clock=clock, pager=pager, settings=settings, engine=engine
        ),
        reminders=services.Reminders(objects=objects, reads=reads, pager=pager, settings=settings),
        activity=services.Activity(reads=reads, pager=pager, settings=settings),
        web=_web(settings, pool),
    )
    for module in (tasks, recurring_tasks, schedules, reminders, activity, admin, dapr, health):
        app.include_router(module.router)
    site.install(app)

    _answer_errors_as_problems(app)
    _document_problems(app)
    _metrics(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    # A server span per request (continuing the caller's traceparent); the objects the
    # request writes carry it on to the operator (telemetry/tracing.py).
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/metrics,/healthz,/readyz")
    return app
