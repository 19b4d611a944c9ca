"""The composition root of the REST shim: ``create_app(settings, kube=..., pool=..., clock=...)``.

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
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_operator.api import auth, deps, problems, ratelimit, services
from todo_operator.api import kube as api_kube
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
from todo_operator.clock import Clock
from todo_operator.schedule_engine import ScheduleEngine
from todo_operator.store import queries
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


def _translate(error: Exception) -> problems.Problem:
    """The project's own errors as problems; anything else is a bug (500)."""
    if isinstance(error, problems.Problem):
        return error
    if isinstance(error, api_kube.Invalid):
        field_errors = [
            problems.FieldError(field=field.removeprefix("spec."), message=message)
            for field, message in error.causes
        ]
        return problems.Problem(422, str(error), kind="invalid-object", errors=field_errors)
    if isinstance(error, api_kube.TransientKubeError):
        return problems.Problem(
            503, "the Kubernetes API is unavailable; retry shortly", headers={"Retry-After": "5"}
        )
    if isinstance(error, api_kube.NotFound):
        return problems.Problem(404, str(error), kind="not-found")
    if isinstance(error, api_kube.KubeError):
        status = error.code if error.code in (400, 403, 409, 422) else 502
        return problems.Problem(status, f"the Kubernetes API refused: {error}", kind="kubernetes")
    if isinstance(error, OverflowError):
        # The domain's duration parser lets 20-digit counts reach timedelta (reported upstream).
        return problems.Problem(422, "a number in the request is too large", kind="invalid-input")
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return problems.Problem(
            503, "the database is unavailable; retry shortly", headers={"Retry-After": "5"}
        )
    return problems.Problem(500, "an unexpected error; it was logged", kind="internal")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether announced or streamed."""

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
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send)

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


class _TooLarge(Exception):
    pass


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


def create_app(
    settings: ApiSettings | None = None,
    *,
    kube: api_kube.ApiKube,
    pool: queries.Pool,
    clock: Clock,
    schedule_engine: ScheduleEngine | None = None,
) -> FastAPI:
    settings = settings if settings is not None else ApiSettings()
    pager = services.Pager(secret=_cursor_secret(settings))
    engine = schedule_engine if schedule_engine is not None else ScheduleEngine()
    objects = services.Objects(kube=kube, settings=settings)
    app = FastAPI(
        title="todo-operator REST API",
        version="v1",
        description="Tasks, recurring tasks and reminders of the calling user. Errors are RFC 9457 problems.",
    )
    app.state.components = deps.Components(
        settings=settings,
        clock=clock,
        pool=pool,
        kube=kube,
        authenticator=auth.Authenticator(settings),
        limiter=ratelimit.WriteLimiter(limit=settings.writes_per_minute),
        preview_limiter=ratelimit.WriteLimiter(limit=settings.previews_per_minute, what="schedule previews"),
        tasks=services.Tasks(objects=objects, pool=pool, clock=clock, pager=pager, settings=settings),
        recurring_tasks=services.RecurringTasks(
            objects=objects, pool=pool, clock=clock, pager=pager, settings=settings, engine=engine
        ),
        reminders=services.Reminders(objects=objects, pool=pool, pager=pager, settings=settings),
        activity=services.Activity(pool=pool, pager=pager, settings=settings),
    )
    for module in (tasks, recurring_tasks, schedules, reminders, activity, admin, dapr, health):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return _problem_response(request, problems.from_validation_errors(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        problem = problems.Problem(error.status_code, str(error.detail), headers=error.headers)
        return _problem_response(request, problem)

    async def known_error(request: Request, error: Exception) -> JSONResponse:
        return _problem_response(request, _translate(error))

    # Our own errors are answered by the exception middleware (no traceback, no re-raise).
    for error_type in (problems.Problem, api_kube.KubeError, psycopg.Error, OverflowError):
        app.add_exception_handler(error_type, known_error)

    @app.exception_handler(Exception)
    async def any_error(request: Request, error: Exception) -> JSONResponse:
        problem = _translate(error)
        if problem.status >= 500 and problem.status != 503:
            logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
        return _problem_response(request, problem)

    _metrics(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    # A server span per request (continuing the caller's traceparent); the objects the
    # request writes carry it on to the operator (telemetry/tracing.py).
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/metrics,/healthz,/readyz")
    return app
