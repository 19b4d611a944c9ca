"""``/api/v1/admin``: dead letters — events that kept failing to publish — listed and re-queued."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from todo_operator.api import bodies, models, problems
from todo_operator.api.deps import AdminUser, Components
from todo_operator.events.deadletters import DeadLetters
from todo_operator.store.outbox import OutboxStore

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    responses=problems.responses(401, 403, 422, 503),
    route_class=bodies.JsonRoute,
)


def _dead_letters(components: Components) -> DeadLetters:
    return DeadLetters(store=OutboxStore(components.pool), clock=components.clock)


@router.get("/dead-letters", response_model=list[models.DeadLetterPublic])
async def list_dead_letters(
    admin: AdminUser,
    components: Components,
    include_retried: Annotated[bool, Query(alias="includeRetried")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[models.DeadLetterPublic]:
    letters = await _dead_letters(components).list(include_retried=include_retried, limit=limit)
    return [models.DeadLetterPublic.model_validate(letter, from_attributes=True) for letter in letters]


@router.post(
    "/dead-letters/{dead_letter_id}/retry",
    response_model=models.RetryResultPublic,
    responses=problems.responses(404),
)
async def retry_dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=2**63 - 1)], admin: AdminUser, components: Components
) -> models.RetryResultPublic:
    result = await _dead_letters(components).retry(dead_letter_id=dead_letter_id)
    if not result.requeued:
        raise problems.Problem(
            404, f"no dead letter {dead_letter_id} is waiting (unknown, or retried already)", kind="not-found"
        )
    return models.RetryResultPublic.model_validate(result, from_attributes=True)
