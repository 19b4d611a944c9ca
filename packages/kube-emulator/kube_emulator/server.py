"""
The HTTP face of the emulator: a :class:`kmock.KubernetesEmulator` subclass
that routes Kubernetes requests to :class:`.cluster.Cluster`, and the two ways
to run it (``serve()`` in a running loop, :class:`ApiServerThread` for sync
code such as pytest session fixtures and the demo).

What is overridden in kmock and why:

* ``__call__``: kmock's path parser fails on ``/api/v1/namespaces``; and kmock
  keeps every request forever and scans that history for each new request to
  match reactions (quadratic: 12.7 objects/s at 50 objects, 3.5 at 200).
  Here only the requests being served are kept, plus an opt-in bounded
  window (``request_history``) for tests that inspect requests. Protobuf
  bodies are answered 415 (we speak JSON only; kubectl retries in JSON for
  most commands, Helm needs ``HELM_DRIVER=memory``).
* ``_handle``: reactions declared with kmock's DSL (``emulator[...] << 409``)
  still come first, so faults can be injected; kmock's own stateful
  fallbacks are replaced by the Cluster, which has real API semantics.
  Note that with no request history, DSL slices such as ``[:1]`` see only
  the requests in flight; for a one-shot fault use a callable that returns
  the error and raises ``kmock.ReactionMismatchError`` once depleted (see
  ``tests/packages/kube_emulator/test_fault_injection.py``).
* error rendering: a proper ``Status`` always, never a traceback.

Named faults for the fault-tolerance suite (failed requests, mangled or
expired watch streams, outages) are armed on ``emulator.faults`` (see
``faults.py``); they are checked before anything else serves a request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import logging
import pathlib
import typing
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import rendering as kmock_rendering  # StreamingError is not exported

from kube_emulator import (
    cluster,
    discovery,
    errors,
    faults,
    journal,
    loopthread,
    patching,
    resources,
    selectors,
    store,
    tables,
)

logger = logging.getLogger(__name__)
Json = dict[str, Any]
T = TypeVar("T")

_JSON_TYPES = ("application/json", *patching.PATCH_TYPES[:3])
_PROTOBUF = "application/vnd.kubernetes.protobuf"


def _json_response(body: Any, *, status: int) -> aiohttp.web.Response:
    # The real API server answers "application/json" with no charset parameter, and
    # clients rely on it: lightkube turns an error into ApiError only on that exact value.
    return aiohttp.web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


@attrs.frozen
class _Path:
    group: str
    version: str
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_path(path: str) -> _Path | None:
    """Parse ``/api/v1/...`` and ``/apis/<group>/<version>/...`` (``None`` for anything else)."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    # "namespaces/<ns>/<plural>..." is a namespaced resource; "namespaces[/<name>[/<sub>]]" the namespaces.
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return _Path(group, version)
    return _Path(
        group, version, rest[0], namespace, rest[1] if len(rest) > 1 else None, "/".join(rest[2:]) or None
    )


def _guess_action(method: str, target: _Path | None, params: Mapping[str, str]) -> Any:
    if target is None or target.plural is None:
        return None
    if method == "GET" and params.get("watch") in ("true", "1"):
        return kmock.action.WATCH
    if target.name is None:
        return {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}.get(method)
    return {
        "GET": kmock.action.FETCH,
        "PATCH": kmock.action.UPDATE,
        "PUT": kmock.action.UPDATE,
        "DELETE": kmock.action.DELETE,
    }.get(method)


class _RequestWindow:
    """The requests kmock's DSL can see: those in flight plus the last ``size`` served (bounded)."""

    def __init__(self, size: int) -> None:
        self.retained: collections.deque[kmock.Request] = collections.deque(maxlen=size)
        self.in_flight: dict[int, kmock.Request] = {}
        self.served = 0

    def __iter__(self) -> Any:
        merged = {request.id: request for request in (*self.retained, *self.in_flight.values())}
        return iter([merged[key] for key in sorted(merged)])

    def __len__(self) -> int:
        return self.served

    def append(self, request: kmock.Request) -> None:
        self.served += 1
        self.retained.append(request)


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator, serving the :class:`.cluster.Cluster` (see the module docstring)."""

    cluster: cluster.Cluster = attrs.field(factory=cluster.Cluster)
    request_history: int = 0
    faults: faults.Faults = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.faults = faults.Faults(self.cluster.store)
        # Deliberately not calling kmock's: its fallback reactions (stateful but simplistic) are replaced
        # by our router; only the reactions that users declare go through kmock's matching.
        # kmock declares a list; the window is list-like where kmock uses it (append, len, iteration).
        self._requests = _RequestWindow(self.request_history)  # type: ignore[assignment]

    def __iter__(self) -> Any:
        return iter(self._requests)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response: aiohttp.web.StreamResponse | None = None
        window = typing.cast(_RequestWindow, self._requests)
        request: kmock.Request | None = None
        try:
            request = await self._parse_request(raw_request, window.served)
            window.append(request)
            window.in_flight[request.id] = request
            try:
                await self.faults.admit(_fault_target(request))
                return await self._handle(request)
            except kmock_rendering.StreamingError as exc:  # kmock's wrapper once a stream started
                response = exc.args[0]
                raise exc.__cause__ or exc from None
        except faults.ConnectionDropped:
            _drop_connection(raw_request)
            return aiohttp.web.Response(status=503)  # never written: the connection is gone
        except Exception as exc:
            status = self._status_for(exc)
            if response is not None and response.prepared:
                await response.write(
                    json.dumps({"type": "ERROR", "object": status.to_status()}).encode() + b"\n"
                )
                await response.write_eof()
                return response
            return _json_response(status.to_status(), status=status.code)
        finally:
            if request is not None:
                window.in_flight.pop(request.id, None)

    @staticmethod
    def _status_for(exc: Exception) -> errors.ApiError:
        if isinstance(exc, errors.ApiError):
            return exc
        if isinstance(exc, kmock.KubernetesError):  # raised by a user-declared kmock reaction
            return errors.ApiError(exc.status, exc.reason or type(exc).__name__, exc.message or repr(exc))
        logger.exception("The API emulator failed to serve a request.")
        return errors.ApiError(500, "InternalError", f"Internal error occurred: {exc!r}")

    async def _parse_request(self, raw: aiohttp.web.BaseRequest, request_id: int) -> kmock.Request:
        body = await raw.read()
        content_type = raw.content_type
        if content_type == _PROTOBUF:
            raise errors.unsupported_media_type(
                f"{content_type}: the devstack API emulator accepts JSON and YAML bodies only"
            )
        data: Any = None
        if body:
            try:
                data = yaml.safe_load(body) if content_type == patching.APPLY_PATCH else json.loads(body)
            except (ValueError, yaml.YAMLError) as exc:
                raise errors.bad_request(
                    f"the request body is not valid {content_type or 'JSON'}: {exc}"
                ) from None
        params = dict(raw.query)
        target = parse_path(raw.path)
        resource = (
            None
            if target is None or target.plural is None
            else kmock.resource(group=target.group, version=target.version, plural=target.plural)
        )
        return kmock.Request(
            id=request_id,
            raw_request=raw,
            url=raw.url,
            method=raw.method,
            params=params,
            headers=dict(raw.headers),
            cookies=dict(raw.cookies),
            body=body,
            text=body.decode(errors="replace"),
            data=data,
            action=_guess_action(raw.method, target, params),
            resource=resource,
            namespace=target.namespace if target else None,
            name=target.name if target else None,
            subresource=target.subresource if target else None,
        )

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self._payloads:  # user-declared reactions first (fault injection); kmock's own matching loop
            with contextlib.suppress(NotImplementedError):
                response: aiohttp.web.StreamResponse = await kmock.RawHandler._handle(self, request)
                return response
        return await _Router(self.cluster, request, self.faults).serve()


def _fault_target(request: kmock.Request) -> faults.Target:
    target = parse_path(request.url.path)
    return faults.Target(
        verb=faults.verb_of(
            request.method,
            name=target.name if target else None,
            watch=request.params.get("watch") in ("true", "1"),
        ),
        plural=target.plural if target else None,
        subresource=(target.subresource or "") if target else "",
    )


def _drop_connection(raw: aiohttp.web.BaseRequest) -> None:
    if raw.transport is not None:
        raw.transport.abort()


class _Router:
    """Serves one request against the cluster: discovery, the verbs, tables, watches."""

    def __init__(self, cluster_: cluster.Cluster, request: kmock.Request, faults_: faults.Faults) -> None:
        self.cluster = cluster_
        self.request = request
        self.faults = faults_
        assert request._raw_request is not None  # always set for requests parsed from HTTP
        self.raw: aiohttp.web.BaseRequest = request._raw_request
        self.params: Mapping[str, str] = request.params

    async def serve(self) -> aiohttp.web.StreamResponse:
        path = self.raw.path.rstrip("/") or "/"
        target = parse_path(path)
        if target is None or target.plural is None:
            return self._respond(self._discovery(path, target))
        if self.raw.method == "GET" and self.params.get("watch") in ("true", "1"):
            return await self._watch(self._resource_type(target), target)
        return self._respond(*self._verb(self._resource_type(target), target))

    def _respond(self, body: Json, status: int = 200) -> aiohttp.web.StreamResponse:
        return _json_response(body, status=status)

    def _resource_type(self, target: _Path) -> resources.ResourceType:
        rt = self.cluster.registry.find(target.group, target.version, target.plural or "")
        if rt is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.namespace is not None and not rt.namespaced:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt

    def _discovery(self, path: str, target: _Path | None) -> Json:
        registry = self.cluster.registry
        document: Json | None = None
        if path == "/":
            document = discovery.root_paths(registry)
        elif path == "/version":
            document = discovery.SERVER_VERSION
        elif path == "/api":
            document = discovery.api_versions()
        elif path == "/apis":
            document = discovery.api_group_list(registry)
        elif path == "/openapi/v3":
            document = discovery.openapi_v3_root(registry)
        elif path.startswith("/openapi/v3/"):
            gv = parse_path(path.removeprefix("/openapi/v3"))
            if gv is not None:
                document = discovery.openapi_v3_group_version(registry, gv.group, gv.version)
        elif path.startswith("/apis/") and path.count("/") == 2:
            document = discovery.api_group(registry, path.split("/")[2])
        elif target is not None:
            document = discovery.api_resource_list(registry, target.group, target.version)
        if document is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return document

    # --- the verbs --------------------------------------------------------------------------------------

    def _verb(self, rt: resources.ResourceType, target: _Path) -> tuple[Json, int]:
        method, name, data = self.raw.method, target.name, self.request.data
        dry_run = self.params.get("dryRun") == "All"
        strict = self.params.get("fieldValidation") == "Strict"
        if target.subresource not in (None, "status") or (target.subresource and not rt.has_status):
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET" and name is None:
            return self._list(rt, target), 200
        if method == "GET" and name is not None:
            obj = self.cluster.get(rt, target.namespace, name)
            return (self._table(rt, [obj]) if self._wants_table() else obj), 200
        if method == "POST" and name is None:
            return self.cluster.create(rt, target.namespace, data, dry_run=dry_run, strict=strict), 201
        if method == "PUT" and name is not None:
            obj = self.cluster.replace(
                rt,
                target.namespace,
                name,
                data,
                subresource=target.subresource,
                dry_run=dry_run,
                strict=strict,
            )
            return obj, 200
        if method == "PATCH" and name is not None:
            obj = self.cluster.patch(
                rt,
                target.namespace,
                name,
                self.raw.content_type,
                data,
                subresource=target.subresource,
                dry_run=dry_run,
                strict=strict,
                field_manager=self.params.get("fieldManager"),
            )
            return obj, 200
        if method == "DELETE" and name is not None:
            options = data if isinstance(data, dict) else {}
            propagation = options.get("propagationPolicy") or self.params.get("propagationPolicy")
            obj = self.cluster.delete(
                rt,
                target.namespace,
                name,
                propagation=propagation,
                preconditions=options.get("preconditions"),
                dry_run=dry_run or options.get("dryRun") == ["All"],
            )
            return obj, (202 if obj["metadata"].get("deletionTimestamp") else 200)
        if method == "DELETE" and name is None:
            for obj in self.cluster.list_objects(rt, target.namespace, self._predicate()):
                self.cluster.delete(
                    rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], dry_run=dry_run
                )
            return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success"}, 200
        raise errors.method_not_allowed(
            f"the server does not allow this method on the requested resource: {method}"
        )

    def _predicate(self) -> selectors.Predicate:
        return selectors.combine(
            selectors.parse_label_selector(self.params.get("labelSelector")),
            selectors.parse_field_selector(self.params.get("fieldSelector")),
        )

    def _wants_table(self) -> bool:
        return "as=Table" in self.raw.headers.get("Accept", "")

    def _table(self, rt: resources.ResourceType, objects: list[Json]) -> Json:
        return tables.table(
            rt,
            objects,
            resource_version=str(self.cluster.store.revision),
            now=datetime.datetime.now(datetime.UTC),
        )

    def _list(self, rt: resources.ResourceType, target: _Path) -> Json:
        items = self.cluster.list_objects(rt, target.namespace, self._predicate())
        if self._wants_table():
            return self._table(rt, items)
        return {
            "apiVersion": rt.api_version,
            "kind": rt.list_kind,
            "metadata": {"resourceVersion": str(self.cluster.store.revision)},
            "items": items,
        }

    # --- watching -------------------------------------------------------------------------------------

    async def _watch(self, rt: resources.ResourceType, target: _Path) -> aiohttp.web.StreamResponse:
        predicate = self._predicate()
        if target.name is not None:
            predicate = selectors.combine(
                predicate, selectors.parse_field_selector(f"metadata.name={target.name}")
            )
        since_text = self.params.get("resourceVersion") or "0"
        if not since_text.isdigit():
            raise errors.bad_request(f"invalid resourceVersion: {since_text!r}")
        timeout = float(self.params["timeoutSeconds"]) if self.params.get("timeoutSeconds") else None

        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        try:  # no await between the snapshot and the subscription: no event can slip between them
            replay, subscription = self.cluster.store.subscribe(
                rt.storage_key, since=None if since_text == "0" else int(since_text)
            )
        except store.Expired as exc:
            self.faults.gone_answered += 1
            await response.prepare(self.raw)
            await response.write(_line({"type": "ERROR", "object": errors.gone(str(exc)).to_status()}))
            await response.write_eof()
            return response
        stream = self.faults.open_watch(rt.plural, subscription)
        try:
            await response.prepare(self.raw)
            for event in replay:
                await self._send(response, rt, target, predicate, event)
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    queued = await asyncio.wait_for(subscription.queue.get(), remaining)
                except TimeoutError:
                    break
                if queued is None:  # interrupted: a fault ends this stream
                    break
                await self._send(response, rt, target, predicate, queued)
            if stream.ending == "dropped":
                _drop_connection(self.raw)
                return response
            if stream.ending == "gone":
                self.faults.gone_answered += 1
                gone = errors.gone("too old resource version: the event log was compacted")
                await response.write(_line({"type": "ERROR", "object": gone.to_status()}))
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away
        finally:
            subscription.close()
            self.faults.close_watch(stream)
        return response

    async def _send(
        self,
        response: aiohttp.web.StreamResponse,
        rt: resources.ResourceType,
        target: _Path,
        predicate: selectors.Predicate,
        event: store.Event,
    ) -> None:
        if self._watch_line(rt, target, predicate, event) is None:
            return  # not for this watcher: faults count only what it would have seen
        outgoing = self.faults.outgoing(rt.plural, event)  # normally just the event itself, at once
        if outgoing.delay:
            await asyncio.sleep(outgoing.delay)
        for sent in outgoing.events:
            line = self._watch_line(rt, target, predicate, sent)
            if line is not None:
                await response.write(line)

    @staticmethod
    def _watch_line(
        rt: resources.ResourceType, target: _Path, predicate: selectors.Predicate, event: store.Event
    ) -> bytes | None:
        def visible(obj: Json | None) -> bool:
            if obj is None:
                return False
            namespace_ok = target.namespace is None or obj["metadata"].get("namespace") == target.namespace
            return namespace_ok and predicate(obj)

        # Selector transitions: an object that starts/stops matching is ADDED/DELETED for this watcher.
        now_visible = event.type != "DELETED" and visible(event.object)
        was_visible = event.type != "ADDED" and visible(event.old if event.old is not None else event.object)
        if now_visible and was_visible:
            event_type = "MODIFIED"
        elif now_visible:
            event_type = "ADDED"
        elif was_visible:
            event_type = "DELETED"
        else:
            return None
        return _line({"type": event_type, "object": cluster.Cluster.view(rt, event.object)})


def _line(document: Json) -> bytes:
    return json.dumps(document).encode() + b"\n"


# --- running it ---------------------------------------------------------------------------------------


@attrs.frozen
class RunningServer:
    url: str
    emulator: Emulator

    @property
    def cluster(self) -> cluster.Cluster:
        return self.emulator.cluster

    def write_kubeconfig(self, path: str | pathlib.Path) -> pathlib.Path:
        return write_kubeconfig(self.url, path)

    def objects(self, resource: str, namespace: str | None = None) -> list[Json]:
        return list(self.cluster.snapshot(resource, namespace))


@contextlib.asynccontextmanager
async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    crds: Iterable[Mapping[str, Any]] = (),
    request_history: int = 0,
    event_log_size: int = 10_000,
    journal: journal.Journal | None = None,
) -> AsyncIterator[RunningServer]:
    """
    Serve the emulator over HTTP on ``host:port`` (0: any free port) for the duration of the block.

    With a ``journal``, the objects it kept are restored before the first request is served, and
    every write is recorded in it until the block ends.
    """
    emulator = Emulator(
        cluster=cluster.Cluster(crds=crds, log_size=event_log_size), request_history=request_history
    )
    try:
        if journal is not None:
            journal.resume(emulator.cluster)
        async with emulator, kmock.Server(emulator, host=host, port=port, user_agent="") as server:
            yield RunningServer(url=f"http://{server.host}:{server.port}", emulator=emulator)
    finally:
        if journal is not None:
            journal.close()


def write_kubeconfig(url: str, path: str | pathlib.Path) -> pathlib.Path:
    """A kubeconfig for kubectl and Kopf: plain HTTP, no credentials, context "devstack" in "default"."""
    path = pathlib.Path(path)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devstack", "cluster": {"server": url}}],
        "users": [{"name": "devstack", "user": {}}],
        "contexts": [
            {
                "name": "devstack",
                "context": {"cluster": "devstack", "user": "devstack", "namespace": "default"},
            }
        ],
        "current-context": "devstack",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class ApiServerThread:
    """The emulator in its own thread and event loop, for synchronous code (fixtures, the demo)."""

    def __init__(
        self,
        *,
        crds: Iterable[Mapping[str, Any]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        request_history: int = 0,
        journal: journal.Journal | None = None,
    ) -> None:
        definitions = [dict(crd) for crd in crds]
        self._thread = loopthread.LoopThread(
            name="devstack-apiserver",
            serve=lambda: serve(
                host=host, port=port, crds=definitions, request_history=request_history, journal=journal
            ),
        )

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def emulator(self) -> Emulator:
        return self._server.emulator

    @property
    def _server(self) -> RunningServer:
        return self._thread.served

    def __enter__(self) -> ApiServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.stop()

    def inject(self, fn: Callable[[Emulator], T]) -> T:
        """Run ``fn(emulator)`` in the server's loop (e.g. to declare a fault) and return its result."""
        return self._call(lambda: fn(self.emulator))

    def objects(self, resource: str, namespace: str | None = None) -> list[Json]:
        """A snapshot of the stored objects of ``resource`` ("group/version/plural" or "v1/plural")."""
        return self._call(lambda: list(self.cluster_snapshot(resource, namespace)))

    def cluster_snapshot(self, resource: str, namespace: str | None) -> list[Json]:
        return list(self._server.cluster.snapshot(resource, namespace))

    def write_kubeconfig(self, path: str | pathlib.Path) -> pathlib.Path:
        return write_kubeconfig(self.url, path)

    def _call(self, fn: Callable[[], T]) -> T:
        return self._thread.call(lambda _: fn())
