"""The activity feed: the caller's recorded events, newest first."""

from __future__ import annotations

from todo_operator.api import cursors, errors, names
from todo_operator.api import models as m
from todo_operator.api.auth import User
from todo_operator.api.services.common import Pager
from todo_operator.api.settings import ApiSettings
from todo_operator.store import queries


class Activity:
    def __init__(self, *, reads: queries.Queries, pager: Pager, settings: ApiSettings) -> None:
        self._reads = reads
        self._pager = pager
        self._namespace = settings.namespace

    async def list(self, *, user: User, cursor: str | None, limit: int) -> m.ActivityPage:
        digest = cursors.query_digest("activity")
        position = self._pager.position(cursor, user=user, digest=digest)
        before = None
        if position is not None:
            if not position.key.isdigit() or len(position.key) > 18:
                raise errors.InvalidCursor("the cursor is malformed")
            before = int(position.key)
        rows = await self._reads.list_activity(
            owner=user.id, namespace=self._namespace, before_id=before, limit=limit + 1
        )
        page, next_cursor = self._pager.page(
            rows,
            limit=limit,
            user=user,
            digest=digest,
            position_of=lambda row: cursors.Position(value=None, key=str(row.id)),
        )
        items = [
            m.ActivityItem(
                id=row.id,
                type=row.event_type,
                subject=names.public_name(owner=user.id, name=row.subject.split("/", 1)[-1]),
                summary=row.summary,
                occurred_at=row.occurred_at,
            )
            for row in page
        ]
        return m.ActivityPage(items=items, next_cursor=next_cursor)
