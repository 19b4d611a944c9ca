"""What every resource's service shares: the caller's live objects, writes with preconditions, paging."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from todo_operator import kube
from todo_operator.api import cursors, errors, names, preconditions
from todo_operator.api import models as m
from todo_operator.api.auth import User
from todo_operator.api.settings import ApiSettings
from todo_operator.domain import crds, resources

Body = dict[str, Any]
LABEL_CREATED_BY = "todo.dev/created-by"


@dataclass(frozen=True, kw_only=True)
class Stored:
    """An answer and the ETag to send with it (None for history rows)."""

    value: Any
    etag: str | None


@contextlib.contextmanager
def domain_validation(*, prefix: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn a domain model's ValidationError into :class:`errors.InvalidInput` naming the fields."""
    try:
        yield
    except ValidationError as error:
        raise errors.InvalidInput.from_validation_errors(
            error.errors(include_url=False), prefix=prefix
        ) from None


def owner_of(kind: crds.Kind, body: Body) -> str | None:
    spec = body.get("spec") or {}
    if kind is crds.RECURRING_TASK:
        owner = (spec.get("taskTemplate") or {}).get("owner")
    else:
        owner = spec.get("owner")
    return owner if isinstance(owner, str) else None


def rv(body: Body) -> str:
    return str(body["metadata"]["resourceVersion"])


def version(body: Body) -> str:
    """What an ETag names: the object (uid) at one generation of its spec.

    Not the resourceVersion: the operator writes status all the time, and a
    client's If-Match must not fail because of writes it cannot see or make.
    """
    meta = body["metadata"]
    return f"{meta['uid']}.{meta.get('generation', 1)}"


_PATCH_ATTEMPTS = 3


class Objects:
    """Shared plumbing: find the caller's live object, write with preconditions."""

    def __init__(self, *, kube: kube.Kube, settings: ApiSettings) -> None:
        self.kube = kube
        self.namespace = settings.namespace

    async def owned(self, kind: crds.Kind, *, user: User, public: str, what: str) -> Body:
        """The caller's live object named ``public``, or :class:`errors.NotFound`."""
        found = await self.find_owned(kind, user=user, public=public)
        if found is None:
            raise errors.NotFound(what, public)
        return found

    async def find_owned(self, kind: crds.Kind, *, user: User, public: str) -> Body | None:
        for name in names.candidates(owner=user.id, public=public):
            body = await self.kube.get(kind, namespace=self.namespace, name=name)
            # A terminating object (finalizers pending) is gone as far as users are concerned.
            if body is None or body["metadata"].get("deletionTimestamp"):
                continue
            if owner_of(kind, body) == user.id:
                return body
        return None

    async def create(self, kind: crds.Kind, *, user: User, public: str | None, spec: Body, what: str) -> Body:
        metadata: Body = {"namespace": self.namespace, "labels": {LABEL_CREATED_BY: "api"}}
        if public is None:
            metadata["generateName"] = names.owner_prefix(user.id) + kind.kind.lower() + "-"
        else:
            await self._refuse_kubectl_twin(kind, user=user, public=public, what=what)
            metadata["name"] = names.object_name(owner=user.id, public=public)
        manifest = {
            "apiVersion": resources.API_VERSION,
            "kind": kind.kind,
            "metadata": metadata,
            "spec": spec,
        }
        try:
            return await self.kube.create(kind, manifest)
        except kube.AlreadyExists:
            # Names carry the caller's prefix: only the caller's own object can be in the way.
            raise errors.AlreadyExists(what, public) from None

    async def _refuse_kubectl_twin(self, kind: crds.Kind, *, user: User, public: str, what: str) -> None:
        """Refuse a name the caller already uses for an object made with kubectl.

        The API shows a kubectl-made object by its own name; an API-made twin of the same
        public name would outrank it and hide it from this user's view (see store.queries).
        """
        plain = await self.kube.get(kind, namespace=self.namespace, name=public)
        if (
            plain is not None
            and not plain["metadata"].get("deletionTimestamp")
            and owner_of(kind, plain) == user.id
        ):
            raise errors.AlreadyExists(what, public, made_with="kubectl")

    async def patch(self, kind: crds.Kind, *, live: Body, spec: Body, if_match: str | None) -> Body:
        name = live["metadata"]["name"]
        for _ in range(_PATCH_ATTEMPTS):
            checked = preconditions.required_version(if_match, current=version(live))
            try:
                # With If-Match the write carries the resourceVersion just read, so the API
                # server refuses it (409) if anything changed in between ...
                return await self.kube.patch_spec(
                    kind,
                    namespace=self.namespace,
                    name=name,
                    spec=spec,
                    resource_version=rv(live) if checked is not None else None,
                )
            except kube.Conflict:
                # ... and if that was only the operator's status write, the spec is still the one
                # the client saw: read again, check again, write again.
                found = await self.kube.get(kind, namespace=self.namespace, name=name)
                if found is None:
                    raise errors.NotFound(kind.kind, name) from None
                live = found
            except kube.NotFound:
                raise errors.NotFound(kind.kind, name) from None
        raise errors.Stale()

    async def delete(self, kind: crds.Kind, *, live: Body, if_match: str | None) -> None:
        # lightkube has no delete preconditions: the check and the delete are two steps here.
        preconditions.required_version(if_match, current=version(live))
        await self.kube.delete(kind, namespace=self.namespace, name=live["metadata"]["name"])


def merge(current: Body, changes: Body) -> Body:
    """RFC 7386 for one level: ``None`` removes."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def changes_of(update: m.Request) -> Body:
    """The fields the client sent, on the wire (camelCase), ``None`` kept as a removal."""
    dumped = update.model_dump(mode="json", by_alias=True)
    fields = type(update).model_fields
    return {
        (fields[field].alias or field): dumped[fields[field].alias or field]
        for field in update.model_fields_set
    }


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class Pager:
    """Signs and checks cursors for one caller and one query."""

    def __init__(self, *, secret: bytes) -> None:
        self._secret = secret

    def position(self, cursor: str | None, *, user: User, digest: str) -> cursors.Position | None:
        if cursor is None:
            return None
        try:
            return cursors.decode(cursor, secret=self._secret, user=user.id, digest=digest)
        except cursors.InvalidCursor as error:
            raise errors.InvalidCursor(str(error), fields=[("cursor", str(error))]) from None

    def page[Row](
        self,
        rows: Sequence[Row],
        *,
        limit: int,
        user: User,
        digest: str,
        position_of: Callable[[Row], cursors.Position],
    ) -> tuple[Sequence[Row], str | None]:
        """One page of ``rows`` (fetched ``limit + 1`` to know if more follow) and the next cursor.

        ``position_of`` says where a row stands in the query's order: the cursor holds the last one's.
        """
        page = rows[:limit]
        if len(rows) <= limit:
            return page, None
        return page, cursors.encode(position_of(page[-1]), secret=self._secret, user=user.id, digest=digest)


def by_name(row: _Named) -> cursors.Position:
    """Where a row stands in a list ordered by name."""
    return cursors.Position(value=None, key=row.name)
