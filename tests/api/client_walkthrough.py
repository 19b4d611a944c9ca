"""The README's REST walkthrough through a client generated from our openapi.json.

Run by tests/api/test_generated_client.py with the generator's own interpreter
(.venv-openapi: openapi-python-client and what its clients need, httpx and attrs),
with the generated package on its path; it prints what it saw as one JSON object.
Nothing here is our code reading our output: the client is the generator's.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from todo_operator_rest_api_client import AuthenticatedClient, Client
from todo_operator_rest_api_client.api.recurring_tasks import (
    create_recurring_task,
    get_recurring_task,
    list_occurrences,
)
from todo_operator_rest_api_client.api.schedules import preview_schedule
from todo_operator_rest_api_client.api.tasks import complete_task, get_task, list_tasks
from todo_operator_rest_api_client.models import RecurringTaskCreate, SchedulePreview


def until(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main(url: str, token: str) -> None:
    client = AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=True)
    anonymous = Client(base_url=url, raise_on_unexpected_status=True)
    seen: dict[str, Any] = {}
    # 401 is a documented answer: the client parses it as the problem document it is.
    refused = get_recurring_task.sync_detailed(client=anonymous, name="pay-rent")
    seen["anonymous"] = [refused.status_code.value, type(refused.parsed).__name__, refused.parsed.status]
    series = create_recurring_task.sync(
        client=client,
        body=RecurringTaskCreate.from_dict(
            {
                "name": "pay-rent",
                "schedule": {"every": "monthly", "start": "2026-12-01T09:00:00", "timeZone": "Europe/Berlin"},
                "taskTemplate": {"title": "Pay the rent", "priority": "high", "tags": ["home"]},
            }
        ),
    )
    seen["created"] = series.name
    first = until(
        "the first occurrence", lambda: get_recurring_task.sync(client=client, name="pay-rent").current_task
    )
    seen["first_title"] = get_task.sync(client=client, name=first).title
    seen["completed_phase"] = complete_task.sync(client=client, name=first).phase
    second = until(
        "the next occurrence",
        lambda: (
            current
            if (current := get_recurring_task.sync(client=client, name="pay-rent").current_task) != first
            else None
        ),
    )
    occurrences = until(
        "the completion recorded",
        lambda: found if (found := list_occurrences.sync(client=client, name="pay-rent")).past else None,
    )
    seen["past"] = [item.name for item in occurrences.past]
    seen["current"] = [item.name for item in occurrences.current]
    seen["second"], seen["first"] = second, first
    seen["upcoming"] = len(occurrences.upcoming)
    found = until("the search", lambda: list_tasks.sync(client=client, q="rent", sort="due").items)
    seen["search"] = sorted(item.name for item in found)
    preview = preview_schedule.sync(
        client=client,
        body=SchedulePreview.from_dict(
            {
                "schedule": {
                    "rrule": "FREQ=MONTHLY;BYDAY=-1FR",
                    "start": "2026-01-30T17:00:00",
                    "timeZone": "Europe/Berlin",
                },
                "count": 3,
                "after": "2026-01-01T00:00:00Z",
            }
        ),
    )
    seen["preview"] = [instant.isoformat() for instant in preview.occurrences]
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
