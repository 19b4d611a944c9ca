"""Probes: ``/healthz`` (the process answers) and ``/readyz`` (PostgreSQL and the API server answer)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from todo_operator.api import models
from todo_operator.api.deps import Components
from todo_operator.domain import crds
from todo_operator.store import queries

router = APIRouter(tags=["health"])
_PROBE_TIMEOUT = 2.0


@router.get("/healthz", response_model=models.Health)
async def healthz() -> models.Health:
    return models.Health(status="ok")


@router.get("/readyz", response_model=models.Health, responses={503: {"model": models.Health}})
async def readyz(components: Components) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(queries.Queries(components.pool).ping(), _PROBE_TIMEOUT)
        checks["postgresql"] = "ok"
    except Exception as error:  # any failure means "not ready"; the reason is reported, not raised
        checks["postgresql"] = f"unavailable: {type(error).__name__}"
    try:
        # A name that never exists: a 404 proves the API server and the CRD answer.
        await asyncio.wait_for(
            components.kube.get(crds.TASK, namespace=components.settings.namespace, name="readyz-probe"),
            _PROBE_TIMEOUT,
        )
        checks["kubernetes"] = "ok"
    except Exception as error:  # as above
        checks["kubernetes"] = f"unavailable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    body = models.Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
