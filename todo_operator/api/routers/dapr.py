"""Dapr's side door: the programmatic subscription and the delivery routes of the activity consumer.

Answers are Dapr's (``SUCCESS``, ``RETRY``, ``DROP``) with HTTP 200, as the
Dapr pub/sub API expects; a body that is not JSON is dropped, not retried.
Deliveries must carry ``TODO_API_DAPR_APP_TOKEN`` in the ``dapr-api-token``
header (Dapr's app API token), so users cannot post fake events into
someone's feed. Without a token every delivery is refused: it fails closed,
and only ``TODO_API_DAPR_INSECURE_ALLOW_UNAUTHENTICATED`` opens it (a local
demo). Dapr sends structured CloudEvents as ``application/cloudevents+json``.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Security
from fastapi.security import APIKeyHeader

from todo_operator.api import bodies, models, problems
from todo_operator.api.deps import Components
from todo_operator.domain.events import TOPIC_REMINDERS, TOPIC_TASK_EVENTS, TOPIC_TASK_UPDATES
from todo_operator.events import consumer

router = APIRouter(tags=["dapr"])
_DELIVERED_AS = (bodies.CLOUDEVENTS, bodies.JSON)


@router.get("/dapr/subscribe")
async def subscribe(components: Components) -> list[dict[str, Any]]:
    settings = components.settings
    # task-updates feeds the open pages (web/live.py), on a component of its own where each replica
    # is its own consumer group (a page may be connected to any replica). Nothing to retry or
    # dead-letter: a page that missed an update loads its view again.
    live = {
        "pubsubname": settings.dapr_live_pubsub or settings.dapr_pubsub,
        "topic": TOPIC_TASK_UPDATES,
        "route": f"{consumer.ROUTE_PREFIX}/{TOPIC_TASK_UPDATES}",
    }
    return [*consumer.subscriptions(pubsub=settings.dapr_pubsub), live]


# Declared in the OpenAPI document (the header is read below, compared in constant time).
DAPR_APP_TOKEN = APIKeyHeader(
    name="dapr-api-token",
    auto_error=False,
    scheme_name="daprAppToken",
    description="Dapr's app API token: deliveries come from the API's own sidecar, never from users.",
)


def _from_the_sidecar(
    components: Components,
    _declared: Annotated[str | None, Security(DAPR_APP_TOKEN)],
    dapr_api_token: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    settings = components.settings
    expected = settings.dapr_app_token
    if expected is None:
        if settings.dapr_insecure_allow_unauthenticated:
            return
        raise problems.Problem(
            401, "deliveries are refused: this API has no Dapr app token to check", kind="unauthorized"
        )
    # Compared in constant time: the token is a password.
    if not hmac.compare_digest((dapr_api_token or "").encode(), expected.get_secret_value().encode()):
        raise problems.Problem(401, "deliveries need Dapr's app token (dapr-api-token)", kind="unauthorized")


async def _typed_as_an_event(request: Request) -> None:
    body = await request.body()
    bodies.check_media_type(
        request.headers.get("content-type"),
        has_body=bool(body),
        accepted=_DELIVERED_AS,
        method=request.method,
    )


@router.post(
    consumer.ROUTE_PREFIX + "/{topic}",
    response_model=models.DaprAnswer,
    responses=problems.responses(401, 404, 413, 415),
    # The sidecar first: nobody else learns anything about a body, not even its type.
    dependencies=[Depends(_from_the_sidecar), Depends(_typed_as_an_event)],
)
async def deliver(
    topic: Annotated[str, Path(max_length=100)], request: Request, components: Components
) -> models.DaprAnswer:
    if topic not in (TOPIC_TASK_EVENTS, TOPIC_REMINDERS, TOPIC_TASK_UPDATES):
        raise problems.Problem(404, f"no subscription for topic {topic!r}", kind="not-found")
    try:
        delivered = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return models.DaprAnswer(status="DROP")
    if not isinstance(delivered, dict):
        return models.DaprAnswer(status="DROP")
    if topic == TOPIC_TASK_UPDATES:
        return models.DaprAnswer(status=_to_open_pages(components, delivered))
    answer = await consumer.ActivityConsumer(components.pool).handle(delivered)
    return models.DaprAnswer(status=answer)


def _to_open_pages(components: Components, delivered: dict[str, Any]) -> consumer.Answer:
    """A task update for its owner's open pages; one that names no owner can never be shown."""
    data = delivered.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("owner"), str):
        return "DROP"
    shown = {key: data.get(key) for key in ("change", "title", "phase")}
    components.web.live.publish(data["owner"], {**shown, "subject": str(delivered.get("subject", ""))})
    return "SUCCESS"
