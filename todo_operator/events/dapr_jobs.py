"""The Dapr sidecar's Jobs API over HTTP: one-shot jobs on the Dapr Scheduler.

Contract (docs.dapr.io, "Jobs API reference"; dapr/dapr ``pkg/api/http/jobs.go``):

- ``POST /v1.0-alpha1/jobs/{name}`` with ``{"dueTime", "data", "ttl",
  "overwrite", "failurePolicy"}``: 204 scheduled, 400 malformed, 409 the name is
  taken (without ``overwrite``), 500 the Scheduler failed.
- ``GET /v1.0-alpha1/jobs/{name}``: 200 and the job; 500 with
  ``DAPR_SCHEDULER_GET_JOB`` also when there is no such job.
- ``DELETE /v1.0-alpha1/jobs/{name}``: 204, also for a name that is not there.
- At ``dueTime`` the sidecar calls the app: ``POST /job/{name}`` with ``data``
  as the body (:mod:`todo_operator.operator.job_triggers` answers it).

The alpha path is served by every Dapr release with the Scheduler (1.14 on;
1.16 adds ``/v1.0/jobs`` and keeps this one). The job's ``failurePolicy`` is
read over HTTP from 1.16 on, which is why docs/REMINDERS.md asks for 1.16.

Every schedule is sent with ``overwrite: true``, so scheduling a reminder
again (a restart, a retry of a handler) replaces its job instead of failing on
the name: idempotent by construction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from todo_operator.events.dapr import SidecarUnavailable, error_text

__all__ = ["DaprJobs", "JobRefused", "SidecarUnavailable", "go_duration"]


class JobRefused(Exception):
    """The sidecar refused the request as such (4xx): ours is wrong, trying again will not help."""


def go_duration(delta: timedelta) -> str:
    """A Go duration string (what ``failurePolicy.constant.interval`` takes): ``"1500ms"``."""
    return f"{round(delta.total_seconds() * 1000)}ms"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DaprJobs:
    def __init__(self, *, session: aiohttp.ClientSession, endpoint: str, timeout: float = 10.0) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def _url(self, name: str) -> str:
        return f"{self._endpoint}/v1.0-alpha1/jobs/{quote(name, safe='')}"

    async def schedule(
        self,
        name: str,
        *,
        due: datetime,
        data: Mapping[str, Any],
        expires: datetime,
        retry_interval: timedelta,
        max_retries: int,
    ) -> None:
        """Schedule (or replace) a one-shot job at ``due``; it goes untriggered after ``expires``."""
        body = {
            "dueTime": rfc3339(due),
            "ttl": rfc3339(expires),
            "data": dict(data),
            "overwrite": True,
            "failurePolicy": {
                "constant": {"interval": go_duration(retry_interval), "maxRetries": max_retries}
            },
        }
        await self._call("POST", name, body=body)

    async def get(self, name: str) -> dict[str, Any] | None:
        """The job as the Scheduler keeps it, or None when there is none by that name."""
        status, payload = await self._request("GET", name)
        if status == 200:
            found: dict[str, Any] = json.loads(payload)
            return found
        code, text = error_text(status, payload)
        if status == 500 and code == "DAPR_SCHEDULER_GET_JOB" and "not found" in text.lower():
            return None
        raise (SidecarUnavailable if status >= 500 else JobRefused)(text)

    async def delete(self, name: str) -> None:
        """Delete the job; one that is not there is deleted already."""
        await self._call("DELETE", name)

    async def _call(self, method: str, name: str, *, body: Mapping[str, Any] | None = None) -> None:
        status, payload = await self._request(method, name, body=body)
        if status in (200, 204):
            return
        _, text = error_text(status, payload)
        raise (SidecarUnavailable if status >= 500 else JobRefused)(text)

    async def _request(
        self, method: str, name: str, *, body: Mapping[str, Any] | None = None
    ) -> tuple[int, bytes]:
        try:
            async with self._session.request(
                method,
                self._url(name),
                data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SidecarUnavailable(f"{type(error).__name__}: {error}") from error
