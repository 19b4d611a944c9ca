"""Reminders: made for the caller's tasks; whose they are follows the task's uid, not its name."""

from __future__ import annotations

from todo_operator.api import cursors, errors, names, preconditions
from todo_operator.api import models as m
from todo_operator.api.auth import User
from todo_operator.api.services.common import (
    Body,
    Objects,
    Pager,
    Stored,
    by_name,
    domain_validation,
    owner_of,
    version,
)
from todo_operator.api.settings import ApiSettings
from todo_operator.domain import crds, resources
from todo_operator.store import queries


def reminder_from_body(body: Body, *, user: User) -> m.ReminderPublic:
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return m.ReminderPublic(
        name=names.public_name(owner=user.id, name=body["metadata"]["name"]),
        task=names.public_name(owner=user.id, name=str((spec.get("taskRef") or {}).get("name", ""))),
        before=spec.get("before"),
        at=spec.get("at"),
        message=str(spec.get("message", "")),
        phase=status.get("phase"),
        fire_at=status.get("fireAt"),
        sent_at=status.get("sentAt"),
        attempts=int(status.get("attempts") or 0),
        last_error=status.get("lastError"),
    )


def reminder_from_record(record: queries.ReminderRead, *, user: User) -> m.ReminderPublic:
    spec = record.spec
    return m.ReminderPublic(
        name=names.public_name(owner=user.id, name=record.name),
        task=names.public_name(owner=user.id, name=record.task_name),
        before=spec.get("before"),
        at=spec.get("at"),
        message=str(spec.get("message", "")),
        phase=record.phase,
        fire_at=record.fire_at,
        sent_at=record.sent_at,
        attempts=record.attempts,
        last_error=record.last_error,
    )


class Reminders:
    def __init__(
        self, *, objects: Objects, reads: queries.Queries, pager: Pager, settings: ApiSettings
    ) -> None:
        self._objects = objects
        self._reads = reads
        self._pager = pager
        self._namespace = settings.namespace

    async def list(self, *, user: User, cursor: str | None, limit: int) -> m.ReminderPage:
        digest = cursors.query_digest("reminders")
        position = self._pager.position(cursor, user=user, digest=digest)
        rows = await self._reads.list_reminders(
            owner=user.id,
            owner_prefix=names.owner_prefix(user.id),
            namespace=self._namespace,
            after_name=None if position is None else position.key,
            limit=limit + 1,
        )
        page, next_cursor = self._pager.page(rows, limit=limit, user=user, digest=digest, position_of=by_name)
        return m.ReminderPage(
            items=[reminder_from_record(row, user=user) for row in page], next_cursor=next_cursor
        )

    async def create(self, *, user: User, body: m.ReminderCreate) -> Stored:
        task = await self._objects.owned(crds.TASK, user=user, public=body.task, what="task")
        with domain_validation():
            spec = resources.ReminderSpec(
                task_ref=resources.TaskRef(name=task["metadata"]["name"]),
                before=body.before,
                at=body.at,
                message=body.message,
            )
        if spec.before is not None and not (task.get("spec") or {}).get("dueAt"):
            message = "the task has no dueAt to count back from"
            raise errors.InvalidInput.on("before", message, detail=f"before: {message}")
        created = await self._objects.create(
            crds.REMINDER, user=user, public=body.name, spec=spec.to_wire(), what="reminder"
        )
        return Stored(value=reminder_from_body(created, user=user), etag=preconditions.etag(version(created)))

    async def delete(self, *, user: User, name: str) -> None:
        for candidate in names.candidates(owner=user.id, public=name):
            body = await self._objects.kube.get(crds.REMINDER, namespace=self._namespace, name=candidate)
            if body is not None and await self._owner(body) == user.id:
                await self._objects.kube.delete(crds.REMINDER, namespace=self._namespace, name=candidate)
                return
        raise errors.NotFound("reminder", name)

    async def _owner(self, body: Body) -> str | None:
        """Whose reminder it is: as the operator recorded it, from the task it was made for.

        Ownership follows uids, not names (F25): the row was recorded from the
        Task of that uid, and stays so when that Task is deleted and another is
        made under its name for someone else. Only a reminder not yet recorded
        (a moment after it is made) is judged by the task its ``taskRef`` names now.
        """
        recorded = await self._reads.reminder_owner(
            namespace=self._namespace, name=str(body["metadata"]["name"])
        )
        if recorded is not None:
            return recorded
        task_name = ((body.get("spec") or {}).get("taskRef") or {}).get("name")
        if isinstance(task_name, str):
            task = await self._objects.kube.get(crds.TASK, namespace=self._namespace, name=task_name)
            if task is not None:
                return owner_of(crds.TASK, task)
        return None
