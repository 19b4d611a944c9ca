"""``/api/v1/schedules/preview``: what a schedule would do, computed by the operator's engine."""

from __future__ import annotations

from fastapi import APIRouter

from todo_operator.api import models, problems
from todo_operator.api.deps import CurrentUser, Services

router = APIRouter(
    prefix="/api/v1/schedules", tags=["schedules"], responses=problems.responses(401, 403, 422)
)


@router.post("/preview", response_model=models.SchedulePreviewResult, responses=problems.responses(413))
async def preview_schedule(
    body: models.SchedulePreview, user: CurrentUser, services_: Services
) -> models.SchedulePreviewResult:
    # Nothing is created; the engine's work is bounded (Limits) and runs in its own threads,
    # off the event loop, so no rate limit beyond auth.
    return await services_.recurring_tasks.preview(body)
