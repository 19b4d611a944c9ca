"""Consuming our CloudEvents as Dapr delivers them: acted on once, whatever the redeliveries.

Dapr delivers at least once, so the same event can arrive twice (a relay
that died before marking, a consumer that died before answering). The
effect and the record of having processed the event id commit in one
transaction; a repeat finds the id and does nothing (F10).

The answer is Dapr's: ``SUCCESS`` (done, or a duplicate), ``RETRY`` (a
transient failure here: the database; Dapr retries per the Resiliency
policy, then sends it to the dead-letter topic), ``DROP`` (it can never be
processed: not one of our events). The first effect is a per-user activity
feed that the REST shim serves. The HTTP edge (the ``/dapr/subscribe``
document and the routes) stays thin and calls :func:`subscriptions` and
:meth:`ActivityConsumer.handle`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import psycopg
from opentelemetry import trace
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from todo_operator.domain.events import TOPIC_REMINDERS, TOPIC_TASK_EVENTS, TOPIC_TASK_UPDATES
from todo_operator.events import schemas
from todo_operator.telemetry import tracing

logger = logging.getLogger(__name__)

Answer = Literal["SUCCESS", "RETRY", "DROP"]
ACTIVITY_CONSUMER = "activity"
ROUTE_PREFIX = "/events"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}-dlq"


def subscriptions(*, pubsub: str = "pubsub") -> list[dict[str, Any]]:
    """The programmatic ``GET /dapr/subscribe`` document (Dapr pub/sub API, "Provide a route ...")."""
    return [
        {
            "pubsubname": pubsub,
            "topic": topic,
            "route": f"{ROUTE_PREFIX}/{topic}",
            "deadLetterTopic": dead_letter_topic(topic),
        }
        for topic in (TOPIC_TASK_EVENTS, TOPIC_REMINDERS, TOPIC_TASK_UPDATES)
        if topic != TOPIC_TASK_UPDATES  # the live-client stream is read by the API, not by this consumer
    ]


def summary(event: schemas.CloudEvent) -> str:
    """One line for the activity feed, in the user's words."""
    kind, _, what = event.type.partition(".")
    noun = {"task": "Task", "recurringtask": "Recurring task", "reminder": "Reminder for"}[kind]
    title = event.data.get("title") or event.data.get("task") or event.subject.split("/", 1)[1]
    return f"{noun} “{title}” {what}"


_CLAIM_EVENT = """
INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s)
ON CONFLICT DO NOTHING
"""

_ADD_ACTIVITY = """
INSERT INTO activity (owner, event_id, event_type, subject, summary, occurred_at)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""


class ActivityConsumer:
    """Writes each task and reminder event once into its owner's activity feed."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[Any]], *, name: str = ACTIVITY_CONSUMER
    ) -> None:
        self._pool = pool
        self._name = name

    async def handle(self, delivered: Mapping[str, Any]) -> Answer:
        try:
            event = schemas.parse(dict(delivered))
        except (ValidationError, schemas.InvalidEvent) as error:
            logger.warning("dropping an event that is not ours: %s", str(error).splitlines()[0])
            return "DROP"
        if event.type == schemas.TASK_UPDATE_TYPE:
            return "SUCCESS"  # not an activity; subscribed by mistake
        with tracing.tracer.start_as_current_span(
            f"consume {event.type}",
            context=tracing.context_from(event.traceparent),
            kind=trace.SpanKind.CONSUMER,
            attributes={"cloudevents.event_id": event.id, "todo.consumer": self._name},
        ) as span:
            answer = await self._record(event)
            span.set_attribute("todo.answer", answer)
            return answer

    async def _record(self, event: schemas.CloudEvent) -> Answer:
        owner = event.data.get("owner") or event.partitionkey
        try:
            async with self._pool.connection() as connection, connection.transaction():
                cursor = await connection.execute(_CLAIM_EVENT, (self._name, event.id))
                if cursor.rowcount == 0:
                    logger.info(
                        "event %s was processed already: dropping the duplicate",
                        event.id,
                        extra={"event_id": event.id, "user": owner},
                    )
                    return "SUCCESS"
                await connection.execute(
                    _ADD_ACTIVITY, (owner, event.id, event.type, event.subject, summary(event), event.time)
                )
        except psycopg.Error as error:
            logger.warning(
                "event %s: database unavailable (%s); asking Dapr to retry",
                event.id,
                error,
                extra={"event_id": event.id, "user": owner},
            )
            return "RETRY"
        return "SUCCESS"
