"""A small synchronous client for tests: our resources over plain HTTP, plus waiting.

Tests talk to the API emulator the way a user's tool would (HTTP, JSON), not
through the operator's own adapter, so an adapter bug cannot hide itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx

from todo_operator.domain import resources

Body = dict[str, Any]


class ApiError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.code = response.status_code
        try:
            self.status: Body = response.json()
        except ValueError:
            self.status = {"message": response.text}
        super().__init__(f"{self.code}: {self.status.get('message')}")


class KubeClient:
    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=10)

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _path(plural: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        group = "/api/v1" if plural in {"events", "namespaces"} else f"/apis/{resources.API_VERSION}"
        path = f"{group}/namespaces/{namespace}/{plural}" if plural != "namespaces" else f"{group}/namespaces"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path

    def _check(self, response: httpx.Response) -> Body:
        if response.status_code >= 400:
            raise ApiError(response)
        body: Body = response.json()
        return body

    def create_namespace(self, name: str) -> Body:
        return self._check(self._http.post("/api/v1/namespaces", json={"metadata": {"name": name}}))

    def create(self, plural: str, namespace: str, manifest: Body) -> Body:
        return self._check(self._http.post(self._path(plural, namespace), json=manifest))

    def get(self, plural: str, namespace: str, name: str) -> Body | None:
        response = self._http.get(self._path(plural, namespace, name))
        if response.status_code == 404:
            return None
        return self._check(response)

    def list(self, plural: str, namespace: str, *, labels: str | None = None) -> list[Body]:
        params = {"labelSelector": labels} if labels else None
        items: list[Body] = self._check(self._http.get(self._path(plural, namespace), params=params))["items"]
        return items

    def patch(self, plural: str, namespace: str, name: str, patch: Body) -> Body:
        headers = {"Content-Type": "application/merge-patch+json"}
        return self._check(self._http.patch(self._path(plural, namespace, name), json=patch, headers=headers))

    def delete(self, plural: str, namespace: str, name: str) -> Body:
        return self._check(self._http.delete(self._path(plural, namespace, name)))

    def events(self, namespace: str, name: str) -> list[Body]:
        params = {"fieldSelector": f"involvedObject.name={name}"}
        items: list[Body] = self._check(self._http.get(self._path("events", namespace), params=params))[
            "items"
        ]
        return items

    def wait_for(
        self,
        what: str,
        probe: Callable[[], Any],
        *,
        timeout: float = 20.0,
        interval: float = 0.05,
    ) -> Any:
        """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")

    def wait_for_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        predicate: Callable[[Body], bool],
        *,
        what: str,
        timeout: float = 20.0,
    ) -> Body:
        def probe() -> Body | None:
            body = self.get(plural, namespace, name)
            return body if body is not None and predicate(body.get("status") or {}) else None

        found: Body = self.wait_for(f"{plural}/{name}: {what}", probe, timeout=timeout)
        return found


def condition(status: Body, type_: str = "Ready") -> Body:
    for item in status.get("conditions", []):
        if item["type"] == type_:
            found: Body = item
            return found
    return {}
