"""The page's routes, assets and error pages, added to the app by :func:`install`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from todo_operator.api import problems
from todo_operator.api.web import pages, render, signin
from todo_operator.api.web.session import CsrfRefused, SignInNeeded

# Paths that are the API's, not the page's: their errors stay RFC 9457 problems.
_NOT_PAGES = (
    "/api/",
    "/events/",
    "/dapr/",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/metrics",
    "/healthz",
    "/readyz",
)


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(_NOT_PAGES)


def error_page(request: Request, problem: problems.Problem) -> Response:
    return render.page(
        request, "error.html", None, title="Something went wrong", problem=problem, status_code=problem.status
    )


def install(app: FastAPI) -> None:
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=render.STATIC), name="static")

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, _: SignInNeeded) -> Response:
        if request.method == "GET" and request.url.path != "/live":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(
                request.url_for("sign_in_page").include_query_params(return_to=target), status_code=303
            )
        return error_page(
            request, problems.Problem(401, "sign in first: your session has ended", kind="unauthorized")
        )

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, refused: CsrfRefused) -> Response:
        return error_page(request, problems.Problem(403, str(refused), kind="forbidden"))
