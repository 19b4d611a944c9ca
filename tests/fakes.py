"""In-memory stand-ins for the operator's adapters, strict where the real ones are strict.

Shared by the tests that run reconcilers without PostgreSQL or the emulator:
the hostile schema tests (a reconciler on every manifest the CRD schema
accepts, thousands per run) and the reconcilers' unit tests. The API
server's admission (the emulator's own ``validation`` module) still checks
every object the operator creates and every status it writes; a status patch
with a resourceVersion is refused (409) once the object moved on, as the API
server refuses it; and the records keep what one unit of work would have
committed, the first recorded completion winning as in PostgreSQL.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kube_emulator import validation
from todo_operator.domain import crds
from todo_operator.domain.events import Event
from todo_operator.kube import AlreadyExists, Body, Conflict, KubeError, NotFound
from todo_operator.store.claims import LiveRow, OccurrenceRow, Table
from todo_operator.store.records import RecordNotFound, RecurringTaskWrite, TaskWrite

SCHEMAS: dict[str, dict[str, Any]] = {
    kind.kind: crds.custom_resource_definition(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for kind in crds.KINDS
}


class RejectedByApiServer(AssertionError):
    """The operator wrote something the API server would refuse: a bug in the operator, not in the input."""


class FakeKube:
    """Our custom resources by (kind, namespace, name), admitted like the API server admits them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Body] = {}
        self.statuses: list[tuple[str, str, dict[str, Any]]] = []  # (kind, name, status) as patched
        self.created: list[Body] = []
        self.deleted: list[tuple[str, str]] = []  # (kind, name)
        self._uids = itertools.count(1)
        self._versions = itertools.count(1)  # one revision for the whole store, as etcd has

    def edit(self, kind: crds.Kind, *, namespace: str, name: str, spec: Mapping[str, Any]) -> Body:
        """A merge patch of the spec (None removes a field): a new generation and resourceVersion."""
        body = self.objects[kind.kind, namespace, name]
        merged = {**body.get("spec", {}), **spec}
        body["spec"] = {key: value for key, value in merged.items() if value is not None}
        meta = body["metadata"]
        meta["generation"] = int(meta.get("generation") or 1) + 1
        meta["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(body)

    def put(self, kind: crds.Kind, body: Body) -> None:
        meta = body["metadata"]
        self.objects[kind.kind, meta["namespace"], meta["name"]] = body

    async def get(self, kind: crds.Kind, *, namespace: str, name: str) -> Body | None:
        found = self.objects.get((kind.kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def list(self, kind: crds.Kind, *, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        return [
            copy.deepcopy(body)
            for (kind_name, body_namespace, _), body in self.objects.items()
            if kind_name == kind.kind
            and body_namespace == namespace
            and all((body["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

    async def create(self, kind: crds.Kind, manifest: Mapping[str, Any]) -> Body:
        body = copy.deepcopy(dict(manifest))
        meta = body["metadata"]
        if (kind.kind, meta["namespace"], meta["name"]) in self.objects:
            raise AlreadyExists(f"{kind.kind} {meta['name']} exists", code=409, reason="AlreadyExists")
        outcome = validation.admit(body, SCHEMAS[kind.kind], old=None)
        if outcome.causes or outcome.unknown_fields:
            raise RejectedByApiServer(f"the operator created an invalid {kind.kind}: {outcome}")
        meta.update(
            uid=str(uuid.UUID(int=next(self._uids))),
            generation=1,
            resourceVersion=str(next(self._versions)),
            creationTimestamp=datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self.put(kind, body)
        self.created.append(body)
        return copy.deepcopy(body)

    async def patch_spec(
        self,
        kind: crds.Kind,
        *,
        namespace: str,
        name: str,
        spec: Mapping[str, Any],
        resource_version: str | None,
    ) -> Body:
        """The API's spec merge patch: refused (409) on a stale resourceVersion, admitted like a create."""
        body = self.objects.get((kind.kind, namespace, name))
        if body is None:
            raise NotFound(f"{kind.kind} {name} not found", code=404, reason="NotFound")
        if resource_version is not None and body["metadata"].get("resourceVersion") != resource_version:
            raise Conflict(f"{kind.kind} {name} was modified", code=409, reason="Conflict")
        merged = {**body.get("spec", {}), **spec}
        candidate = {**copy.deepcopy(body), "spec": {k: v for k, v in merged.items() if v is not None}}
        outcome = validation.admit(candidate, SCHEMAS[kind.kind], old=body)
        if outcome.causes or outcome.unknown_fields:
            raise RejectedByApiServer(f"the API wrote an invalid {kind.kind} spec: {outcome}")
        return self.edit(kind, namespace=namespace, name=name, spec=spec)

    async def patch_status(
        self,
        kind: crds.Kind,
        *,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> Body:
        # A merge patch: keys set to None are removed (that is how status_wire clears fields).
        body = self.objects.get((kind.kind, namespace, name))
        if body is None:
            raise KubeError(f"{kind.kind} {name} not found", code=404, reason="NotFound")
        current = (body.get("metadata") or {}).get("resourceVersion")
        if resource_version is not None and current is not None and current != resource_version:
            raise Conflict(f"{kind.kind} {name} was modified", code=409, reason="Conflict")
        merged = {**(body.get("status") or {}), **status}
        merged = {key: value for key, value in merged.items() if value is not None}
        checked = copy.deepcopy(merged)
        outcome = validation.admit(checked, SCHEMAS[kind.kind]["properties"]["status"], old=None)
        if outcome.causes or outcome.unknown_fields:
            raise RejectedByApiServer(f"the operator wrote an invalid {kind.kind} status: {outcome}")
        body["status"] = merged
        # Every write makes a new version, as the API server's does (the operator commits over it).
        body.setdefault("metadata", {})["resourceVersion"] = str(next(self._versions))
        self.statuses.append((kind.kind, name, copy.deepcopy(merged)))
        return copy.deepcopy(body)

    async def delete(self, kind: crds.Kind, *, namespace: str, name: str) -> None:
        if self.objects.pop((kind.kind, namespace, name), None) is not None:
            self.deleted.append((kind.kind, name))


@dataclasses.dataclass
class FakeRecords:
    """What the operator's units of work committed: each save is one row with its events."""

    saved: list[tuple[TaskWrite | RecurringTaskWrite, list[Event]]] = dataclasses.field(default_factory=list)
    completions: dict[str, datetime] = dataclasses.field(default_factory=dict)  # task uid -> first recorded

    async def save_task(self, row: TaskWrite, *, events: Sequence[Event] = ()) -> datetime | None:
        self.saved.append((row, list(events)))
        if row.completed and row.completed_at is not None:
            self.completions.setdefault(row.uid, row.completed_at)
        return self.completions.get(row.uid) if row.completed else None

    async def save_recurring_task(self, row: RecurringTaskWrite, *, events: Sequence[Event] = ()) -> None:
        self.saved.append((row, list(events)))

    async def completion_instant(self, *, task_uid: str) -> datetime:
        if task_uid not in self.completions:
            raise RecordNotFound(task_uid)
        return self.completions[task_uid]

    async def mark_deleted(self, *, table: str, uid: str, at: datetime, events: Sequence[Event] = ()) -> None:
        raise AssertionError("nothing is deleted in these tests")

    async def mark_task_deleted(
        self, *, uid: str, at: datetime, skip: bool, deleted: Event, skipped: Event
    ) -> bool:
        raise AssertionError("nothing is deleted in these tests")

    def events(self) -> list[str]:
        """The types of the events recorded, in order."""
        return [event.type for _, events in self.saved for event in events]


@dataclasses.dataclass
class FakeClaims:
    """The live rows of names (``store/claims.py``): none unless a test records one."""

    rows: dict[tuple[str, str, str], LiveRow] = dataclasses.field(default_factory=dict)  # (table, ns, name)
    occurrences: dict[str, list[OccurrenceRow]] = dataclasses.field(default_factory=dict)  # series uid
    moved: list[tuple[str, str, str, int]] = dataclasses.field(default_factory=list)  # (table, old, new, gen)

    async def live(self, table: Table, *, namespace: str, name: str) -> LiveRow | None:
        return self.rows.get((table, namespace, name))

    async def rekey(
        self, table: Table, *, namespace: str, name: str, old_uid: str, new_uid: str, generation: int
    ) -> LiveRow | None:
        row = self.rows.get((table, namespace, name))
        if row is None or row.uid not in (old_uid, new_uid):
            return None
        moved = dataclasses.replace(row, uid=new_uid, generation=generation)
        self.rows[table, namespace, name] = moved
        self.moved.append((table, old_uid, new_uid, generation))
        self.occurrences[new_uid] = self.occurrences.pop(old_uid, [])
        return moved

    async def live_occurrences(self, *, series_uid: str) -> list[OccurrenceRow]:
        return self.occurrences.get(series_uid, [])


@dataclasses.dataclass
class RecordingEvents:
    """Kubernetes Events the reconcilers post: (type, reason, message)."""

    posted: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def normal(self, body: Body, *, reason: str, message: str) -> None:
        self.posted.append(("Normal", reason, message))

    def warning(self, body: Body, *, reason: str, message: str) -> None:
        self.posted.append(("Warning", reason, message))
