"""``/api/v1/tasks``: the caller's tasks (one-off and occurrences of recurring tasks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime

from todo_operator.api import bodies, models, problems, services
from todo_operator.api.deps import Components, CurrentUser, Cursor, IfMatch, PageSize, WritingUser
from todo_operator.domain import resources
from todo_operator.store import queries

router = APIRouter(
    prefix="/api/v1/tasks",
    tags=["tasks"],
    responses=problems.responses(401, 403, 422, 503),
    route_class=bodies.JsonRoute,
)
Name = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
SearchText = Annotated[str | None, Query(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


def _answer(response: Response, stored: services.Stored) -> models.TaskPublic:
    if stored.etag is not None:
        response.headers["ETag"] = stored.etag
    value: models.TaskPublic = stored.value
    return value


@router.get("", response_model=models.TaskPage, responses=problems.responses(400))
async def list_tasks(
    user: CurrentUser,
    components: Components,
    limit: PageSize,
    cursor: Cursor = None,
    status: Annotated[
        queries.TaskState | None,
        Query(description="todo (open or overdue), open, overdue, completed or skipped"),
    ] = None,
    priority: Annotated[list[resources.Priority] | None, Query(max_length=4)] = None,
    tag: Annotated[list[resources.Tag] | None, Query(max_length=20, description="repeat for several")] = None,
    tags_match: Annotated[queries.TagsMatch, Query(alias="tagsMatch")] = "all",
    due_before: Annotated[AwareDatetime | None, Query(alias="dueBefore")] = None,
    due_after: Annotated[AwareDatetime | None, Query(alias="dueAfter")] = None,
    recurring: bool | None = None,
    q: SearchText = None,
    sort: Annotated[
        str, Query(max_length=20, description="due, priority, created, next, title; '-' descends")
    ] = "-created",
) -> models.TaskPage:
    key, descending = services.parse_sort(sort)
    query = services.TaskListQuery(
        state=status,
        priorities=tuple(sorted(set(priority or []))),
        tags=tuple(sorted(set(tag or []))),
        tags_match=tags_match,
        due_before=due_before,
        due_after=due_after,
        recurring=recurring,
        text=q,
        sort=key,
        descending=descending,
    )
    return await components.tasks.list(user=user, query=query, cursor=cursor, limit=limit)


@router.post(
    "", response_model=models.TaskPublic, status_code=201, responses=problems.responses(409, 413, 429)
)
async def create_task(
    body: models.TaskCreate, user: WritingUser, components: Components, response: Response
) -> models.TaskPublic:
    stored = await components.tasks.create(user=user, body=body)
    response.headers["Location"] = f"/api/v1/tasks/{stored.value.name}"
    return _answer(response, stored)


@router.get("/{name}", response_model=models.TaskPublic, responses=problems.responses(404))
async def get_task(
    name: Name, user: CurrentUser, components: Components, response: Response
) -> models.TaskPublic:
    return _answer(response, await components.tasks.get(user=user, name=name))


@router.patch(
    "/{name}", response_model=models.TaskPublic, responses=problems.responses(404, 409, 412, 413, 429)
)
async def update_task(
    name: Name,
    body: models.TaskUpdate,
    user: WritingUser,
    components: Components,
    response: Response,
    if_match: IfMatch = None,
) -> models.TaskPublic:
    return _answer(
        response, await components.tasks.update(user=user, name=name, body=body, if_match=if_match)
    )


@router.post(
    "/{name}/complete", response_model=models.TaskPublic, responses=problems.responses(404, 409, 412, 429)
)
async def complete_task(
    name: Name, user: WritingUser, components: Components, response: Response, if_match: IfMatch = None
) -> models.TaskPublic:
    return _answer(response, await components.tasks.complete(user=user, name=name, if_match=if_match))


@router.post(
    "/{name}/skip",
    response_model=models.TaskPublic,
    responses=problems.responses(404, 409, 412, 429),
    summary="Skip the current occurrence of a recurring task",
    description=(
        "The series moves on to its next slot without a completion being recorded: the occurrence"
        " is deleted, its reminders are cancelled, and it stays in the history as Skipped"
        " (`task.skipped`). Only the current, not completed occurrence of a recurring task can be"
        " skipped (409 otherwise). The same as deleting that occurrence with kubectl."
    ),
)
async def skip_task(
    name: Name, user: WritingUser, components: Components, if_match: IfMatch = None
) -> models.TaskPublic:
    return await components.tasks.skip(user=user, name=name, if_match=if_match)


@router.delete("/{name}", status_code=204, responses=problems.responses(404, 409, 412, 429))
async def delete_task(
    name: Name, user: WritingUser, components: Components, if_match: IfMatch = None
) -> Response:
    await components.tasks.delete(user=user, name=name, if_match=if_match)
    return Response(status_code=204)
