"""``/api/v1/schedules/preview``: what a schedule would do, computed by the operator's engine."""

from __future__ import annotations

from fastapi import APIRouter

from todo_operator.api import bodies, models, problems
from todo_operator.api.deps import Components, PreviewingUser

router = APIRouter(
    prefix="/api/v1/schedules",
    tags=["schedules"],
    responses=problems.responses(401, 403, 422),
    route_class=bodies.JsonRoute,
)


@router.post(
    "/preview", response_model=models.SchedulePreviewResult, responses=problems.responses(413, 429, 503)
)
async def preview_schedule(
    body: models.SchedulePreview, user: PreviewingUser, components: Components
) -> models.SchedulePreviewResult:
    # Nothing is created, but a schedule costs up to one compile budget of the engine's two threads:
    # limited per user (TODO_API_PREVIEWS_PER_MINUTE, TODO_API_ENGINE_JOBS_PER_USER), off the loop.
    return await components.recurring_tasks.preview(body, user=user)
