"""Fixtures for the API emulator's conformance suite: one emulator per test, talked to over HTTP."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml

import kube_emulator as apiserver

HERE = pathlib.Path(__file__).parent
WIDGET_CRD: dict[str, Any] = yaml.safe_load((HERE / "widget-crd.yaml").read_text())
WIDGETS = "/apis/example.dev/v1/namespaces/default/widgets"


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"title": "A widget", "url": "https://example.dev", **spec},
    }


class Api:
    """A thin JSON client: every call returns (status, body)."""

    def __init__(self, session: aiohttp.ClientSession, server: apiserver.RunningServer) -> None:
        self.session = session
        self.server = server

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = (
            None
            if body is None
            else (
                body
                if isinstance(body, (str, bytes))
                else yaml.safe_dump(body)
                if content_type == "application/apply-patch+yaml"
                else __import__("json").dumps(body)
            )
        )
        async with self.session.request(
            method,
            self.server.url + path,
            data=data,
            params=params,
            headers={"Content-Type": content_type, **(headers or {})},
        ) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", path, body, **kwargs)

    async def put(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("PUT", path, body, **kwargs)

    async def patch(
        self, path: str, body: Any, content_type: str = "application/merge-patch+json", **kwargs: Any
    ) -> tuple[int, Any]:
        return await self.call("PATCH", path, body, content_type=content_type, **kwargs)

    async def delete(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("DELETE", path, body, **kwargs)


@pytest.fixture
async def server() -> AsyncIterator[apiserver.RunningServer]:
    async with apiserver.serve(crds=[WIDGET_CRD]) as running:
        yield running


@pytest.fixture
async def api(server: apiserver.RunningServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, server)
