"""``/api/v1/recurring-tasks``: schedules with a task template; their occurrences are Tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from todo_operator.api import bodies, models, problems, services
from todo_operator.api.deps import Components, CurrentUser, Cursor, IfMatch, PageSize, WritingUser
from todo_operator.api.routers.tasks import Name

router = APIRouter(
    prefix="/api/v1/recurring-tasks",
    tags=["recurring tasks"],
    responses=problems.responses(401, 403, 422, 503),
    route_class=bodies.JsonRoute,
)


def _answer(response: Response, stored: services.Stored) -> models.RecurringTaskPublic:
    if stored.etag is not None:
        response.headers["ETag"] = stored.etag
    value: models.RecurringTaskPublic = stored.value
    return value


@router.get("", response_model=models.RecurringTaskPage, responses=problems.responses(400))
async def list_recurring_tasks(
    user: CurrentUser, components: Components, limit: PageSize, cursor: Cursor = None
) -> models.RecurringTaskPage:
    return await components.recurring_tasks.list(user=user, cursor=cursor, limit=limit)


@router.post(
    "",
    response_model=models.RecurringTaskPublic,
    status_code=201,
    responses=problems.responses(409, 413, 429),
)
async def create_recurring_task(
    body: models.RecurringTaskCreate, user: WritingUser, components: Components, response: Response
) -> models.RecurringTaskPublic:
    stored = await components.recurring_tasks.create(user=user, body=body)
    response.headers["Location"] = f"/api/v1/recurring-tasks/{stored.value.name}"
    return _answer(response, stored)


@router.get("/{name}", response_model=models.RecurringTaskPublic, responses=problems.responses(404))
async def get_recurring_task(
    name: Name, user: CurrentUser, components: Components, response: Response
) -> models.RecurringTaskPublic:
    return _answer(response, await components.recurring_tasks.get(user=user, name=name))


@router.patch(
    "/{name}", response_model=models.RecurringTaskPublic, responses=problems.responses(404, 412, 413, 429)
)
async def update_recurring_task(
    name: Name,
    body: models.RecurringTaskUpdate,
    user: WritingUser,
    components: Components,
    response: Response,
    if_match: IfMatch = None,
) -> models.RecurringTaskPublic:
    stored = await components.recurring_tasks.update(user=user, name=name, body=body, if_match=if_match)
    return _answer(response, stored)


@router.post(
    "/{name}/suspend", response_model=models.RecurringTaskPublic, responses=problems.responses(404, 412, 429)
)
async def suspend_recurring_task(
    name: Name, user: WritingUser, components: Components, response: Response, if_match: IfMatch = None
) -> models.RecurringTaskPublic:
    stored = await components.recurring_tasks.set_suspended(
        user=user, name=name, suspend=True, if_match=if_match
    )
    return _answer(response, stored)


@router.post(
    "/{name}/resume", response_model=models.RecurringTaskPublic, responses=problems.responses(404, 412, 429)
)
async def resume_recurring_task(
    name: Name, user: WritingUser, components: Components, response: Response, if_match: IfMatch = None
) -> models.RecurringTaskPublic:
    stored = await components.recurring_tasks.set_suspended(
        user=user, name=name, suspend=False, if_match=if_match
    )
    return _answer(response, stored)


@router.delete("/{name}", status_code=204, responses=problems.responses(404, 412, 429))
async def delete_recurring_task(
    name: Name, user: WritingUser, components: Components, if_match: IfMatch = None
) -> Response:
    await components.recurring_tasks.delete(user=user, name=name, if_match=if_match)
    return Response(status_code=204)


# 429: the upcoming occurrences are computed in the schedule engine, one job per user at a time.
@router.get("/{name}/occurrences", response_model=models.Occurrences, responses=problems.responses(404, 429))
async def list_occurrences(
    name: Name,
    user: CurrentUser,
    components: Components,
    upcoming: Annotated[int, Query(ge=0, le=100, description="how many future occurrences")] = 10,
) -> models.Occurrences:
    return await components.recurring_tasks.occurrences(user=user, name=name, count=upcoming)
