"""An object seen for the first time takes up its name's record, if PostgreSQL has one.

The rule (docs/OPERATIONS.md, "Restore"): while an object's status records
no observed generation, its reconcile starts from the live row of its name.

- No live row: a new object, recorded as new.
- Its own row (recorded, but the status write after it was lost): the row is
  what was recorded, so the reconcile goes on from it.
- Another uid's row: the object that row was recorded for is gone without
  its deletion being recorded: a Kubernetes name is held by one object at a
  time, and a deletion waits for the finalizer, which records it first.
  That is the cluster rebuilt and the database restored, and the objects
  applied again from Git. So the row, with its history, is moved to the
  object that holds the name in the cluster now (checked there: a handler
  of an object that is itself gone must not take a newer one's row), and
  the reconcile goes on from it: the series from its count of occurrences,
  the task from its completion, the reminder from what was sent. Nothing is
  made, sent or told a second time.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from pydantic import ValidationError

from todo_operator.domain import crds, resources
from todo_operator.kube import Body, Kube
from todo_operator.store.claims import LiveRow, RecordClaims, Table

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TakenUp:
    """This object's claim on its name's record: ``row`` is the live row, now its own (None: new)."""

    row: LiveRow | None


class _Recorder(Protocol):
    def normal(self, body: Body, *, reason: str, message: str) -> None: ...


def _same_spec(spec: resources.Model, recorded: dict[str, Any]) -> bool:
    """Whether a row's recorded spec is ``spec`` (one that no longer parses is not)."""
    try:
        return type(spec).model_validate(recorded) == spec
    except ValidationError:
        return False


async def take_up_record(
    body: Body,
    *,
    kind: crds.Kind,
    table: Table,
    kube: Kube,
    claims: RecordClaims,
    cluster_events: _Recorder,
    spec: resources.Model,
) -> TakenUp | None:
    """The live row of ``body``'s name, moved to its uid if it was another's (``TakenUp.row`` is
    None without one); None, logged, when another object holds the name now (a late handler call
    of an object that is gone: its reconcile stops).

    A row moved from another uid is recorded at the object's generation when its recorded
    spec is ``spec``, else at generation 0, so the reconcile tells of the
    change as an update.
    """
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    row = await claims.live(table, namespace=namespace, name=name)
    if row is None or row.uid == uid:
        return TakenUp(row)
    holder = await kube.get(kind, namespace=namespace, name=name)
    if holder is None or holder["metadata"].get("uid") != uid:
        logger.info("%s %s/%s %s is no longer the object of that name", kind.kind, namespace, name, uid)
        return None
    generation = int(meta.get("generation") or 1) if _same_spec(spec, row.spec) else 0
    moved = await claims.rekey(
        table, namespace=namespace, name=name, old_uid=row.uid, new_uid=uid, generation=generation
    )
    if moved is None:
        logger.info("the record of %s %s/%s changed hands while it was taken up", kind.kind, namespace, name)
        return None
    logger.info("%s %s/%s takes up the record of uid %s", kind.kind, namespace, name, row.uid)
    cluster_events.normal(
        body,
        reason="RecordTakenUp",
        message=f"recorded before under uid {row.uid} (restored): its history and state carry over",
    )
    return TakenUp(moved)
