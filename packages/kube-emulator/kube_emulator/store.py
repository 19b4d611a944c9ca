"""
Object storage with the API server's consistency model: one global,
monotonic ``resourceVersion`` (as etcd's revision), and a bounded log of
change events that watches resume from.

Stock kmock keeps versions of objects but has no revision and takes the watch
snapshot and the event-bus position at different moments, so a change in
between is lost. Here every mutation is synchronous (no ``await`` inside), so
a watch takes its snapshot and subscribes in one step and cannot miss or
duplicate an event. A watch resuming from a revision older than the log
keeps is answered "410 Gone", as etcd compaction makes the real server do.

Every write goes through :meth:`Store.put` or :meth:`Store.remove`, so that
is where a :class:`Journal` (``journal.py``, for the demo's ``--keep``) is
told of it: before the write is applied, hence before any client can see it.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Protocol

Json = dict[str, Any]
StorageKey = tuple[str, str]  # (group, plural): all versions of a resource share it
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclasses.dataclass(frozen=True)
class Event:
    revision: int
    storage_key: StorageKey
    type: EventType
    object: Json  # the object after the change (for DELETED: its last state, with the new revision)
    old: Json | None  # the object before the change (for selector transitions in watches)


class Journal(Protocol):
    """Told of each write before it is applied; raising refuses the write (nothing changes)."""

    def record(self, revision: int, storage_key: StorageKey, key: tuple[str, str], obj: Json | None) -> None:
        """``obj`` is the object's new state, ``None`` when the object at ``key`` (namespace, name) goes."""


class Expired(Exception):
    """The requested revision is older than the event log keeps."""


class Subscription:
    """A live feed of events for one storage key, fed synchronously by the store."""

    def __init__(self, store: Store, storage_key: StorageKey) -> None:
        self._store = store
        self.storage_key = storage_key
        # None wakes the watch serving this subscription without an event (see interrupt()).
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def close(self) -> None:
        self._store._subscriptions.discard(self)

    def interrupt(self) -> None:
        """Wake the watch that serves this subscription: it is to end (a fault says how)."""
        self.queue.put_nowait(None)


class Store:
    def __init__(self, *, log_size: int = 10_000) -> None:
        self.revision = 0
        self._objects: dict[StorageKey, dict[tuple[str, str], Json]] = collections.defaultdict(dict)
        self._by_uid: dict[str, tuple[StorageKey, str, str]] = {}
        self._dependents: dict[str, set[str]] = collections.defaultdict(set)  # owner uid -> dependent uids
        self._log: collections.deque[Event] = collections.deque(maxlen=log_size)
        self._log_floor = (
            0  # the newest revision dropped from the log: resuming from older ones is impossible
        )
        self._subscriptions: set[Subscription] = set()
        self.journal: Journal | None = None

    # --- reading ------------------------------------------------------------------------------------

    def get(self, storage_key: StorageKey, namespace: str, name: str) -> Json | None:
        return self._objects[storage_key].get((namespace, name))

    def list_objects(self, storage_key: StorageKey, namespace: str | None = None) -> list[Json]:
        return [
            obj for (ns, _), obj in self._objects[storage_key].items() if namespace is None or ns == namespace
        ]

    def by_uid(self, uid: str) -> tuple[StorageKey, Json] | None:
        location = self._by_uid.get(uid)
        if location is None:
            return None
        storage_key, namespace, name = location
        return storage_key, self._objects[storage_key][(namespace, name)]

    def dependents(self, owner_uid: str) -> list[tuple[StorageKey, Json]]:
        found = [self.by_uid(uid) for uid in sorted(self._dependents.get(owner_uid, ()))]
        return [item for item in found if item is not None]

    def in_namespace(self, namespace: str) -> Iterator[tuple[StorageKey, Json]]:
        for storage_key, objects in list(self._objects.items()):
            for (ns, _), obj in list(objects.items()):
                if ns == namespace:
                    yield storage_key, obj

    def everything(self) -> Iterator[tuple[StorageKey, Json]]:
        for storage_key, objects in list(self._objects.items()):
            for obj in objects.values():
                yield storage_key, obj

    # --- writing: each call is one revision, one event ------------------------------------------------

    def put(self, storage_key: StorageKey, obj: Json, event_type: EventType) -> Json:
        """Store a new state of an object, stamping the next ``resourceVersion`` into it."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        old = self._objects[storage_key].get(key)
        revision = self.revision + 1
        meta["resourceVersion"] = str(revision)
        if self.journal is not None:
            self.journal.record(revision, storage_key, key, obj)
        self.revision = revision
        self._objects[storage_key][key] = obj
        self._by_uid[meta["uid"]] = (storage_key, *key)
        self._index_owners(old, remove=True)
        self._index_owners(obj, remove=False)
        self._emit(Event(self.revision, storage_key, event_type, obj, old))
        return obj

    def remove(self, storage_key: StorageKey, obj: Json) -> Json:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if key not in self._objects[storage_key]:
            raise KeyError(key)
        if self.journal is not None:
            self.journal.record(self.revision + 1, storage_key, key, None)
        old = self._objects[storage_key].pop(key)
        self._by_uid.pop(meta["uid"], None)
        self._index_owners(old, remove=True)
        self.revision += 1
        last = copy.deepcopy(old)
        last["metadata"]["resourceVersion"] = str(self.revision)
        self._emit(Event(self.revision, storage_key, "DELETED", last, old))
        return last

    def _index_owners(self, obj: Json | None, *, remove: bool) -> None:
        if obj is None:
            return
        uid = obj["metadata"]["uid"]
        for ref in obj["metadata"].get("ownerReferences") or ():
            owner_uid = ref.get("uid")
            if remove:
                self._dependents.get(owner_uid, set()).discard(uid)
            else:
                self._dependents[owner_uid].add(uid)

    def _emit(self, event: Event) -> None:
        if self._log.maxlen is not None and len(self._log) == self._log.maxlen:
            self._log_floor = self._log[0].revision
        self._log.append(event)
        for subscription in self._subscriptions:
            if subscription.storage_key == event.storage_key:
                subscription.queue.put_nowait(event)

    def compact(self) -> None:
        """Forget the event log, as etcd compaction does: resuming from before now is "410 Gone"."""
        self._log.clear()
        self._log_floor = self.revision

    # --- restoring what an earlier emulator stored (the demo's --keep) --------------------------------

    def restore(self, storage_key: StorageKey, objects: Iterable[Json]) -> None:
        """Replace every object of ``storage_key`` by ``objects``, verbatim: no new revision, no event."""
        for obj in self._objects.pop(storage_key, {}).values():
            self._by_uid.pop(obj["metadata"]["uid"], None)
            self._index_owners(obj, remove=True)
        for obj in objects:
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            self._objects[storage_key][key] = obj
            self._by_uid[meta["uid"]] = (storage_key, *key)
            self._index_owners(obj, remove=False)

    def continue_from(self, revision: int) -> None:
        """Count on from ``revision`` (never back) with an empty event log: older watches get "410 Gone"."""
        self.revision = max(self.revision, revision)
        self.compact()

    # --- watching -------------------------------------------------------------------------------------

    def subscribe(self, storage_key: StorageKey, *, since: int | None) -> tuple[list[Event], Subscription]:
        """
        Atomically: the events to replay and a subscription for everything after them.

        ``since=None`` replays the current objects as synthetic ADDED events
        (a watch without a resourceVersion, or with "0"); otherwise the logged
        events newer than ``since`` are replayed.
        """
        if since is None:
            replay = [
                Event(self.revision, storage_key, "ADDED", obj, None)
                for obj in self._objects[storage_key].values()
            ]
        elif since < self._log_floor:
            raise Expired(f"too old resource version: {since} ({self._log_floor + 1})")
        else:
            replay = [ev for ev in self._log if ev.revision > since and ev.storage_key == storage_key]
        subscription = Subscription(self, storage_key)
        self._subscriptions.add(subscription)
        return replay, subscription
