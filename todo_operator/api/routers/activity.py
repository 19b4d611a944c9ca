"""``/api/v1/activity``: the caller's feed, written by the activity consumer from our events."""

from __future__ import annotations

from fastapi import APIRouter

from todo_operator.api import bodies, models, problems
from todo_operator.api.deps import Components, CurrentUser, Cursor, PageSize

router = APIRouter(
    prefix="/api/v1/activity",
    tags=["activity"],
    responses=problems.responses(400, 401, 403, 422, 503),
    route_class=bodies.JsonRoute,
)


@router.get("", response_model=models.ActivityPage)
async def list_activity(
    user: CurrentUser, components: Components, limit: PageSize, cursor: Cursor = None
) -> models.ActivityPage:
    return await components.activity.list(user=user, cursor=cursor, limit=limit)
