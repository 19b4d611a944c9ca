"""
Faults on demand, for the fault-tolerance suite (``tests/faults``): what a
real API server does to its clients on a bad day, switched on by a test and
counted, so that the test can also check that the fault really happened.

Kubernetes clients must survive each of these (docs: RELIABILITY F3, F5,
F15, F19):

* errors on requests: :meth:`Faults.fail_next` (5xx, 429 ...) and
  :meth:`Faults.conflict_on_next` (409 Conflict, what a stale
  ``resourceVersion`` gets) for the next *n* requests matching a verb and a
  resource; :meth:`Faults.hold_next` keeps such requests waiting until the
  test releases them (a slow write, during which someone else writes: the
  way to a real 409);
* watch streams that lose, repeat, hold back or replay stale events
  (:meth:`Faults.drop_watch_events`, :meth:`Faults.duplicate_watch_events`,
  :meth:`Faults.delay_watch_events` — one resource's stream lagging, so that
  events reach a client in another order than they happened across
  resources — and :meth:`Faults.replay_stale_watch_events` — an object's
  older state after its newer one on the same stream, which a conformant
  API server never sends: a stress beyond the real world);
* :meth:`Faults.expire_watches`: a compaction — open watches end with "410
  Gone", and so does resuming from any earlier ``resourceVersion``, so
  clients must list again;
* :meth:`Faults.begin_outage` / :meth:`Faults.end_outage`: the API server
  unavailable — every request answered 503 (or its connection dropped, as
  when the process dies) and open watches cut, until the outage ends.

kmock's DSL (``emulator[...] << error``) covers one-off request faults, but
not watch streams nor "the next *n*" without a history (see ``server.py``);
these are the faults the suite needs, by name. Call the methods in the
emulator's event loop (``ApiServerThread.inject``); the counters are plain
integers that another thread may read.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Literal

from kube_emulator import errors, store

Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
Ending = Literal["gone", "dropped", "ended"]
WatchFaultKind = Literal["drop", "duplicate", "delay", "stale"]


def verb_of(method: str, *, name: str | None, watch: bool) -> Verb | None:
    """The Kubernetes (RBAC) verb of a request: what users and the docs call it."""
    if method == "GET":
        return "watch" if watch else ("get" if name else "list")
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    verbs: dict[str, Verb] = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    return verbs.get(method)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """What a request is about, as far as faults care."""

    verb: Verb | None
    plural: str | None
    subresource: str  # "" for the resource itself


@dataclasses.dataclass(kw_only=True)
class RequestFault:
    """Answer the next ``times`` requests that match with ``error``; ``fired`` counts them."""

    error: errors.ApiError
    times: int
    verb: Verb | None  # None: any verb
    plural: str | None  # None: any resource
    subresource: str | None  # None: any; "": the resource itself; "status": its status
    fired: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.fired

    def matches(self, target: Target) -> bool:
        return (
            self.remaining > 0
            and self.verb in (None, target.verb)
            and self.plural in (None, target.plural)
            and self.subresource in (None, target.subresource)
        )


@dataclasses.dataclass(kw_only=True)
class Hold:
    """Keep the next ``times`` matching requests waiting until :meth:`release`; ``held`` counts them."""

    times: int
    verb: Verb | None
    plural: str | None
    subresource: str | None
    held: int = 0
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def matches(self, target: Target) -> bool:
        return (
            self.held < self.times
            and self.verb in (None, target.verb)
            and self.plural in (None, target.plural)
            and self.subresource in (None, target.subresource)
        )

    def release(self) -> None:
        """Let the held requests (and any later ones it would catch) go on to be served."""
        self.released.set()


@dataclasses.dataclass(kw_only=True)
class WatchFault:
    """Mangle the next ``times`` events sent on watch streams of ``plural``; ``fired`` counts them."""

    kind: WatchFaultKind
    times: int
    plural: str | None  # None: any resource
    seconds: float = 0.0  # how long a "delay" holds each event back
    fired: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.fired


@dataclasses.dataclass(kw_only=True)
class Outage:
    """While active, requests are refused; ``refused`` counts them (how hard clients knock)."""

    status: int | None  # None: the connection is dropped instead of answered
    active: bool = True
    refused: int = 0


@dataclasses.dataclass(kw_only=True)
class Outgoing:
    """What a watch stream sends for one event: these events, after ``delay`` seconds."""

    events: list[store.Event]
    delay: float = 0.0


class OpenWatch:
    """A watch stream being served: a fault can end it (with 410 Gone, dropped, or just ended)."""

    def __init__(self, plural: str, subscription: store.Subscription) -> None:
        self.plural = plural
        self.ending: Ending | None = None
        self._subscription = subscription

    def end(self, ending: Ending) -> None:
        self.ending = ending
        self._subscription.interrupt()


class Faults:
    """The faults armed on one emulator (``Emulator.faults``)."""

    def __init__(self, store_: store.Store) -> None:
        self._store = store_
        self._requests: list[RequestFault] = []
        self._holds: list[Hold] = []
        self._watch: list[WatchFault] = []
        self._open: set[OpenWatch] = set()
        self.outage: Outage | None = None
        self.gone_answered = 0  # watches told "410 Gone" (at an expiry, or resuming from before one)

    # --- requests -------------------------------------------------------------------------------

    def fail_next(
        self,
        times: int,
        *,
        status: int = 500,
        verb: Verb | None = None,
        plural: str | None = None,
        subresource: str | None = None,
        reason: str | None = None,
        message: str = "injected fault",
    ) -> RequestFault:
        """Answer the next ``times`` matching requests with ``status`` (a ``Status``, as the server would)."""
        reasons = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
        error = errors.ApiError(status, reason or reasons.get(status, "InternalError"), message)
        fault = RequestFault(error=error, times=times, verb=verb, plural=plural, subresource=subresource)
        self._requests.append(fault)
        return fault

    def conflict_on_next(
        self, times: int, *, verb: Verb, plural: str, subresource: str | None = None
    ) -> RequestFault:
        """409 Conflict for the next ``times`` matching writes, worded as for a stale resourceVersion."""
        message = f"Operation cannot be fulfilled on {plural}: {errors.STALE}"
        return self.fail_next(
            times,
            status=409,
            verb=verb,
            plural=plural,
            subresource=subresource,
            reason="Conflict",
            message=message,
        )

    def hold_next(
        self,
        times: int = 1,
        *,
        verb: Verb | None = None,
        plural: str | None = None,
        subresource: str | None = None,
    ) -> Hold:
        """Keep the next ``times`` matching requests waiting until ``hold.release()``, then serve them."""
        hold = Hold(times=times, verb=verb, plural=plural, subresource=subresource)
        self._holds.append(hold)
        return hold

    async def admit(self, target: Target) -> None:
        """The server's hook before serving a request: wait while held, then raise a fault's error."""
        for hold in self._holds:
            if hold.matches(target):
                hold.held += 1
                await hold.released.wait()
        self.check_request(target)

    def check_request(self, target: Target) -> None:
        """Raise the error a fault answers this request with, if one does."""
        if self.outage is not None and self.outage.active:
            self.outage.refused += 1
            if self.outage.status is None:
                raise ConnectionDropped
            raise errors.ApiError(self.outage.status, "ServiceUnavailable", "the API server is unavailable")
        for fault in self._requests:
            if fault.matches(target):
                fault.fired += 1
                raise fault.error

    # --- watch streams --------------------------------------------------------------------------

    def drop_watch_events(self, times: int, *, plural: str | None = None) -> WatchFault:
        """The next ``times`` events on watches of ``plural`` are not sent (they stay in the log)."""
        return self._add_watch_fault("drop", times, plural)

    def duplicate_watch_events(self, times: int, *, plural: str | None = None) -> WatchFault:
        """Each of the next ``times`` events on watches of ``plural`` is sent twice."""
        return self._add_watch_fault("duplicate", times, plural)

    def delay_watch_events(self, times: int, *, seconds: float, plural: str | None = None) -> WatchFault:
        """Hold each of the next ``times`` events on watches of ``plural`` back ``seconds`` (in order)."""
        return self._add_watch_fault("delay", times, plural, seconds=seconds)

    def replay_stale_watch_events(self, times: int, *, plural: str | None = None) -> WatchFault:
        """After each of the next ``times`` MODIFIED events, the object's previous state is sent again."""
        return self._add_watch_fault("stale", times, plural)

    def _add_watch_fault(
        self, kind: WatchFaultKind, times: int, plural: str | None, *, seconds: float = 0.0
    ) -> WatchFault:
        fault = WatchFault(kind=kind, times=times, plural=plural, seconds=seconds)
        self._watch.append(fault)
        return fault

    def outgoing(self, plural: str, event: store.Event) -> Outgoing:
        """What a watch of ``plural`` sends for ``event`` and after how long: normally just it, at once.

        Every armed fault that applies has its say, in the order armed: a drop sends
        nothing, a duplicate sends everything twice, a delay holds it back (and the
        stream's later events with it), a stale replay adds the previous state.
        """
        sent = Outgoing(events=[event])
        for fault in self._watch:
            if fault.remaining <= 0 or fault.plural not in (None, plural):
                continue
            if fault.kind == "stale" and (event.type != "MODIFIED" or event.old is None):
                continue
            fault.fired += 1
            if fault.kind == "drop":
                return Outgoing(events=[])
            if fault.kind == "duplicate":
                sent.events = [*sent.events, *sent.events]
            elif fault.kind == "delay":
                sent.delay += fault.seconds
            else:
                assert event.old is not None  # checked above
                sent.events.append(dataclasses.replace(event, object=event.old, old=event.object))
        return sent

    @property
    def open_watches(self) -> int:
        """How many watch streams are being served now."""
        return len(self._open)

    def open_watch(self, plural: str, subscription: store.Subscription) -> OpenWatch:
        stream = OpenWatch(plural, subscription)
        self._open.add(stream)
        return stream

    def close_watch(self, stream: OpenWatch) -> None:
        self._open.discard(stream)

    def expire_watches(self) -> int:
        """Compact the event log: open watches end with 410 Gone, as does any later resume from before now.

        Returns how many open watches were ended.
        """
        self._store.compact()
        return self._end_watches("gone")

    def _end_watches(self, ending: Ending) -> int:
        streams = list(self._open)
        for stream in streams:
            stream.end(ending)
        return len(streams)

    # --- outages ----------------------------------------------------------------------------------

    def begin_outage(self, *, status: int | None = 503) -> Outage:
        """Refuse every request from now on (``status``, or None: drop the connection); cut open watches."""
        self.outage = Outage(status=status)
        self._end_watches("dropped" if status is None else "ended")
        return self.outage

    def end_outage(self) -> Outage | None:
        outage, self.outage = self.outage, None
        if outage is not None:
            outage.active = False
        return outage

    # --- all of them ------------------------------------------------------------------------------

    def heal(self) -> None:
        """Disarm every fault, release held requests, end any outage (counters keep their counts)."""
        armed: list[RequestFault | WatchFault] = [*self._requests, *self._watch]
        for fault in armed:
            fault.times = fault.fired
        for hold in self._holds:
            hold.times = hold.held
            hold.release()
        self._holds.clear()
        self._requests.clear()
        self._watch.clear()
        self.end_outage()


class ConnectionDropped(Exception):
    """The server closes the connection without an answer (an outage with no status)."""
