"""A real (tiny) Kopf operator converges against the emulator: finalizer, status, deletion."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import kopf
import pytest

import kube_emulator as apiserver
from tests.packages.kube_emulator.conftest import WIDGET_CRD

WIDGETS = "example.dev/v1/widgets"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


def make_registry(url: str, deleted: list[str]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.watching.server_timeout = 10
        settings.watching.client_timeout = 15
        settings.posting.level = logging.WARNING

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, insecure=True)

    @kopf.on.create("example.dev", "v1", "widgets", registry=registry)
    def created(spec: kopf.Spec, patch: kopf.Patch, meta: kopf.Meta, **_: Any) -> None:
        patch.status["phase"] = "Ready"
        patch.status["observedGeneration"] = meta["generation"]

    @kopf.on.delete("example.dev", "v1", "widgets", registry=registry)
    def removed(name: str, **_: Any) -> None:
        deleted.append(name)

    return registry


@pytest.fixture(scope="module")
def operator() -> Iterator[tuple[apiserver.ApiServerThread, list[str]]]:
    deleted: list[str] = []
    with apiserver.ApiServerThread(crds=[WIDGET_CRD]) as server:
        stop = threading.Event()
        registry = make_registry(server.url, deleted)
        thread = threading.Thread(
            target=lambda: asyncio.run(
                kopf.operator(registry=registry, clusterwide=True, standalone=True, stop_flag=stop)
            ),
            daemon=True,
        )
        thread.start()
        try:
            yield server, deleted
        finally:
            stop.set()
            thread.join(timeout=30)


def eventually(check: Callable[[], Any], *, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"did not converge within {timeout}s")
        time.sleep(0.05)


def test_operator_adds_finalizer_patches_status_and_handles_deletion(
    operator: tuple[apiserver.ApiServerThread, list[str]],
) -> None:
    server, deleted = operator
    body = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "smoke", "namespace": "default"},
        "spec": {"title": "Smoke", "url": "https://example.dev"},
    }
    server.inject(
        lambda emulator: emulator.cluster.create(emulator.cluster.find_type(WIDGETS), "default", body)
    )

    def ready() -> dict[str, Any] | None:
        objects = server.objects(WIDGETS, "default")
        return next((o for o in objects if o.get("status", {}).get("phase") == "Ready"), None)

    obj = eventually(ready)
    assert FINALIZER in obj["metadata"]["finalizers"]
    assert obj["status"]["observedGeneration"] == 1

    server.inject(
        lambda emulator: emulator.cluster.delete(emulator.cluster.find_type(WIDGETS), "default", "smoke")
    )
    eventually(lambda: server.objects(WIDGETS, "default") == [])
    assert deleted == ["smoke"]
