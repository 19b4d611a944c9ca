"""Dapr's side door: the programmatic subscription and the delivery routes of the activity consumer.

Answers are Dapr's (``SUCCESS``, ``RETRY``, ``DROP``) with HTTP 200, as the
Dapr pub/sub API expects; a body that is not JSON is dropped, not retried.
When ``TODO_API_DAPR_APP_TOKEN`` is set, deliveries must carry it in the
``dapr-api-token`` header (Dapr's app API token), so users cannot post
fake events into someone's feed.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request

from todo_operator.api import models, problems
from todo_operator.api.deps import Services
from todo_operator.domain.events import TOPIC_REMINDERS, TOPIC_TASK_EVENTS
from todo_operator.events import consumer

router = APIRouter(tags=["dapr"])


@router.get("/dapr/subscribe")
async def subscribe(services_: Services) -> list[dict[str, Any]]:
    return consumer.subscriptions(pubsub=services_.settings.dapr_pubsub)


@router.post(
    consumer.ROUTE_PREFIX + "/{topic}",
    response_model=models.DaprAnswer,
    responses=problems.responses(401, 404),
)
async def deliver(
    topic: Annotated[str, Path(max_length=100)],
    request: Request,
    services_: Services,
    dapr_api_token: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> models.DaprAnswer:
    expected = services_.settings.dapr_app_token
    if expected is not None and not hmac.compare_digest(
        (dapr_api_token or "").encode(), expected.get_secret_value().encode()
    ):
        raise problems.Problem(401, "deliveries need Dapr's app API token", kind="unauthorized")
    if topic not in (TOPIC_TASK_EVENTS, TOPIC_REMINDERS):
        raise problems.Problem(404, f"no subscription for topic {topic!r}", kind="not-found")
    try:
        delivered = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return models.DaprAnswer(status="DROP")
    if not isinstance(delivered, dict):
        return models.DaprAnswer(status="DROP")
    answer = await consumer.ActivityConsumer(services_.pool).handle(delivered)
    return models.DaprAnswer(status=answer)
