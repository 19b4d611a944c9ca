"""``/api/v1/reminders``: extra reminders on the caller's tasks (always e-mailed to the caller)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from todo_operator.api import bodies, models, problems
from todo_operator.api.deps import Components, CurrentUser, Cursor, PageSize, WritingUser
from todo_operator.api.routers.tasks import Name

router = APIRouter(
    prefix="/api/v1/reminders",
    tags=["reminders"],
    responses=problems.responses(401, 403, 422, 503),
    route_class=bodies.JsonRoute,
)


@router.get("", response_model=models.ReminderPage, responses=problems.responses(400))
async def list_reminders(
    user: CurrentUser, components: Components, limit: PageSize, cursor: Cursor = None
) -> models.ReminderPage:
    return await components.reminders.list(user=user, cursor=cursor, limit=limit)


@router.post(
    "",
    response_model=models.ReminderPublic,
    status_code=201,
    responses=problems.responses(404, 409, 413, 429),
)
async def create_reminder(
    body: models.ReminderCreate, user: WritingUser, components: Components, response: Response
) -> models.ReminderPublic:
    stored = await components.reminders.create(user=user, body=body)
    if stored.etag is not None:
        response.headers["ETag"] = stored.etag
    value: models.ReminderPublic = stored.value
    return value


@router.delete("/{name}", status_code=204, responses=problems.responses(404, 429))
async def delete_reminder(name: Name, user: WritingUser, components: Components) -> Response:
    await components.reminders.delete(user=user, name=name)
    return Response(status_code=204)
