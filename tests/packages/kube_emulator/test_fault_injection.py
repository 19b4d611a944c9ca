"""kmock's DSL still works for fault injection, and the request history stays bounded."""

from __future__ import annotations

import kmock

import kube_emulator as apiserver
from tests.packages.kube_emulator.conftest import WIDGET_CRD, WIDGETS, Api, widget


async def test_declared_reaction_overrides_the_emulator(server: apiserver.RunningServer, api: Api) -> None:
    emulator = server.emulator
    emulator["post", emulator.resource("example.dev/v1/widgets")] << kmock.KubernetesError(
        status=409, reason="Conflict", message="injected"
    )
    status, body = await api.post(WIDGETS, widget())
    assert status == 409
    assert body["message"] == "injected"


async def test_one_shot_fault_with_a_depleting_callable(server: apiserver.RunningServer, api: Api) -> None:
    faults = iter([kmock.KubernetesError(status=500, reason="InternalError", message="once")])

    def next_fault() -> kmock.KubernetesError:
        try:
            return next(faults)
        except StopIteration:
            raise kmock.ReactionMismatchError from None  # depleted: kmock disables the reaction

    server.emulator["post"] << next_fault
    assert (await api.post(WIDGETS, widget()))[0] == 500
    assert (await api.post(WIDGETS, widget()))[0] == 201


async def test_requests_are_not_retained_by_default(server: apiserver.RunningServer, api: Api) -> None:
    for name in ("a", "b", "c"):
        await api.post(WIDGETS, widget(name))
    assert list(server.emulator) == []


async def test_request_history_is_opt_in_and_bounded(api: Api) -> None:
    async with apiserver.serve(crds=[WIDGET_CRD], request_history=2) as server:
        other = Api(api.session, server)
        for name in ("a", "b", "c"):
            await other.post(WIDGETS, widget(name))
        assert [request.data["metadata"]["name"] for request in server.emulator] == ["b", "c"]


def test_thread_server_injects_and_snapshots() -> None:
    with apiserver.ApiServerThread(crds=[WIDGET_CRD]) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.inject(lambda emulator: type(emulator).__name__) == "Emulator"
        names = {ns["metadata"]["name"] for ns in server.objects("v1/namespaces")}
        assert names == {"default", "kube-system", "kube-public"}
