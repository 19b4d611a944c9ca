"""
The emulated cluster's objects on disk, so that ``todo-operator demo --keep``
resumes where the last run was, even after a crash: a write-ahead journal.

The emulator keeps its objects in memory, while the demo's PostgreSQL (with
its outbox) and its mailbox are on disk. Saving the objects only when the
demo stopped cleanly rolled them back after a crash (SIGKILL, the OOM
killer): occurrences the database had completed came back Open, the REST
API listed tasks that answered 404, reminders of objects that were gone
were still sent. Here every write is appended to the journal *before* the
store applies it (:class:`.store.Journal`), so before any client sees it in
an answer or a watch event, hence before anything that follows from it can
reach PostgreSQL: the replayed objects are never behind the database.

Each entry is one ``write(2)`` on a descriptor opened with ``O_APPEND``: in
the kernel when the call returns, so it survives the process being killed.
There is no ``fsync`` per entry: like the demo's PostgreSQL (``fsync=off``)
the journal is not meant to survive the machine losing power.

The format is JSON lines. The first line is a base: the revision and every
object at that moment. Each further line is one write: its revision (one
more than the line before's), the storage key, namespace and name, and the
object after the write (``null`` when it was removed). The file is rewritten
as a new base (temporary file, ``fsync``, rename: never half-written) when
the emulator starts and after ``compact_after`` writes, so it stays in
proportion to the objects.

Reading is strict. A last line without its newline is a write the crash cut
short, which no client was ever answered, so it is dropped (as a database
drops a torn WAL record). Anything else that does not fit (not JSON, a gap
in the revisions, a removal of an object not there) is refused with the
line number: a state nobody can vouch for is not resumed.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import pathlib
from typing import Any

from kube_emulator import cluster, store

Json = dict[str, Any]
FORMAT = "todo-operator devstack cluster journal"
VERSION = 1
COMPACT_AFTER = 10_000  # writes between two bases: ~10 MB for the demo's few-KB objects


class Untrusted(Exception):
    """A kept state that cannot be resumed as it is; the message says why."""


@dataclasses.dataclass(frozen=True)
class Saved:
    """What a journal holds: the store's revision and its objects, by storage key, then (namespace, name)."""

    revision: int
    objects: dict[store.StorageKey, dict[tuple[str, str], Json]]
    torn_tail: bool = False  # a last write cut short by the crash was dropped


def read(path: pathlib.Path) -> Saved:
    """Replay the journal at ``path`` (raises :class:`Untrusted` naming the line that does not fit)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn_tail = lines[-1] != b""  # written without its newline: the write was cut short
    complete = lines[:-1]
    if not complete:
        raise Untrusted(f"{path}: no complete entry, not even the base")
    base = _parse(path, 1, complete[0])
    if base.get("format") != FORMAT or base.get("version") != VERSION:
        raise Untrusted(f"{path}, line 1: not a {FORMAT} of version {VERSION}")
    revision = _integer(path, 1, base, "revision")
    objects: dict[store.StorageKey, dict[tuple[str, str], Json]] = collections.defaultdict(dict)
    for entry in _list(path, 1, base, "objects"):
        storage_key = _storage_key(path, 1, entry)
        obj = entry.get("object")
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            raise Untrusted(f"{path}, line 1: an object without metadata")
        objects[storage_key][(obj["metadata"].get("namespace", ""), obj["metadata"].get("name", ""))] = obj
    for number, line in enumerate(complete[1:], start=2):
        entry = _parse(path, number, line)
        written = _integer(path, number, entry, "revision")
        if written != revision + 1:
            raise Untrusted(
                f"{path}, line {number}: revision {written} follows {revision} (a write is missing)"
            )
        revision = written
        storage_key = _storage_key(path, number, entry)
        key = (str(entry.get("namespace", "")), str(entry.get("name", "")))
        obj = entry.get("object")
        if obj is None:
            if objects[storage_key].pop(key, None) is None:
                raise Untrusted(f"{path}, line {number}: removes {'/'.join(key)}, which is not there")
        elif not isinstance(obj, dict) or (obj.get("metadata") or {}).get("resourceVersion") != str(revision):
            raise Untrusted(
                f"{path}, line {number}: the object is not the one written at revision {revision}"
            )
        else:
            objects[storage_key][key] = obj
    return Saved(revision=revision, objects=dict(objects), torn_tail=torn_tail)


def _parse(path: pathlib.Path, number: int, line: bytes) -> Json:
    try:
        entry = json.loads(line)
    except ValueError as error:
        raise Untrusted(f"{path}, line {number}: not JSON ({error})") from None
    if not isinstance(entry, dict):
        raise Untrusted(f"{path}, line {number}: not a JSON object")
    return entry


def _integer(path: pathlib.Path, number: int, entry: Json, field: str) -> int:
    value = entry.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Untrusted(f"{path}, line {number}: no {field}")
    return value


def _list(path: pathlib.Path, number: int, entry: Json, field: str) -> list[Json]:
    value = entry.get(field)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Untrusted(f"{path}, line {number}: no {field}")
    return value


def _storage_key(path: pathlib.Path, number: int, entry: Json) -> store.StorageKey:
    group, plural = entry.get("group"), entry.get("plural")
    if not isinstance(group, str) or not isinstance(plural, str) or not plural:
        raise Untrusted(f"{path}, line {number}: no group and plural")
    return (group, plural)


class Journal:
    """
    The journal of one emulator: :meth:`open` reads (and judges) what is kept before anything starts,
    :meth:`resume` puts it into a new cluster and records every write from then on.
    """

    def __init__(
        self, path: pathlib.Path, saved: Saved | None, *, compact_after: int = COMPACT_AFTER
    ) -> None:
        self.path = path
        self.saved = saved
        self.restored: cluster.Restored | None = None
        self._compact_after = compact_after
        self._store: store.Store | None = None
        self._descriptor: int | None = None
        self._size = 0  # bytes of whole entries: a failed append is cut back to it
        self._since_base = 0

    @classmethod
    def open(cls, path: pathlib.Path, *, compact_after: int = COMPACT_AFTER) -> Journal:
        """The journal at ``path``, read if it exists (:class:`Untrusted` when it cannot be trusted)."""
        return cls(path, read(path) if path.exists() else None, compact_after=compact_after)

    def resume(self, cluster_: cluster.Cluster) -> None:
        """Restore what was kept into ``cluster_`` (a new one), write a new base and record every write."""
        if self.saved is not None:
            saved = {key: list(objects.values()) for key, objects in self.saved.objects.items()}
            self.restored = cluster_.restore(saved, revision=self.saved.revision)
        self._store = cluster_.store
        self._write_base()
        cluster_.store.journal = self

    def record(
        self, revision: int, storage_key: store.StorageKey, key: tuple[str, str], obj: Json | None
    ) -> None:
        if self._since_base >= self._compact_after:
            self._write_base()  # the store as it is: every earlier write applied, this one not yet
        namespace, name = key
        entry = {
            "revision": revision,
            "group": storage_key[0],
            "plural": storage_key[1],
            "namespace": namespace,
            "name": name,
            "object": obj,
        }
        self._append((json.dumps(entry, separators=(",", ":")) + "\n").encode())
        self._since_base += 1

    def close(self) -> None:
        if self._store is not None and self._store.journal is self:
            self._store.journal = None
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def _append(self, data: bytes) -> None:
        assert self._descriptor is not None, "resume() first"
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._descriptor, view) :]
        except OSError:
            # A disk that is full: the write is refused (the store does not apply it), and the journal
            # keeps only whole entries, so the next one does not follow a fragment.
            os.ftruncate(self._descriptor, self._size)
            raise
        self._size += len(data)

    def _write_base(self) -> None:
        assert self._store is not None
        base = {
            "format": FORMAT,
            "version": VERSION,
            "revision": self._store.revision,
            "objects": [
                {"group": group, "plural": plural, "object": obj}
                for (group, plural), obj in self._store.everything()
            ],
        }
        data = (json.dumps(base, separators=(",", ":")) + "\n").encode()
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)  # the old journal or the new base, never a mix
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself, so the base is not lost with its entries gone
        finally:
            os.close(folder)
        if self._descriptor is not None:
            os.close(self._descriptor)
        self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = len(data)
        self._since_base = 0
