"""Schedule work runs off the event loop, in the operator and in the API, a bounded share per user.

A valid schedule can cost a lot of CPU (docs/PERFORMANCE.md, "RRULE bombs"). Here
compiling one particular schedule is *held* (a gate in ``Recurrence.compile``
that waits until the test opens it): while it is held, the operator must go
on reconciling other objects and the API must go on answering. Were the
compile on the loop, both would wait for the gate, and the test would time
out instead. While one user's schedule work is held, another user's preview
must get the engine's other thread, and the first user's next one is refused
at once (429) rather than queued. No timing is measured: the gate makes the
order certain.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api import harness
from tests.api.harness import ALICE, BOB, Api
from tests.domain.recurrence.test_compile_budget import SPARSE_VALID_RULE, WORST_VALID_RULE
from tests.kubeclient import KubeClient
from todo_operator.domain import recurrence

make_api = harness.make_api

HELD_RULE = "FREQ=DAILY;BYHOUR=6;BYMINUTE=17"  # only schedules with this rule are held
GATE_TIMEOUT = 30.0


@dataclass
class Gate:
    entered: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    threads: list[str] = field(default_factory=list)


@pytest.fixture
def held_compile(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """Hold ``Recurrence.compile`` of HELD_RULE schedules until ``gate.opened`` is set."""
    gate = Gate()
    original: Callable[..., recurrence.Recurrence] = recurrence.Recurrence.compile

    def compile_held(spec: recurrence.ScheduleSpec, **kwargs: Any) -> recurrence.Recurrence:
        if spec.rrule == HELD_RULE:
            gate.threads.append(threading.current_thread().name)
            gate.entered.set()
            gate.opened.wait(GATE_TIMEOUT)
        return original(spec, **kwargs)

    monkeypatch.setattr(recurrence.Recurrence, "compile", staticmethod(compile_held))
    try:
        yield gate
    finally:
        gate.opened.set()  # never leave an engine thread waiting


def _start(days: int) -> str:
    """A start no other test uses: compiled schedules are cached by their spec."""
    return (datetime.now(tz=UTC) + timedelta(days=days)).strftime("%Y-%m-%dT06:17:00")


def test_the_api_answers_while_a_schedule_compiles(
    make_api: Callable[..., Api], namespace: str, held_compile: Gate
) -> None:
    api = make_api(namespace)
    alice = api.as_user(ALICE)
    body = {"schedule": {"rrule": HELD_RULE, "start": _start(40), "timeZone": "UTC"}, "count": 3}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        preview = pool.submit(alice.post, "/api/v1/schedules/preview", json=body)
        assert held_compile.entered.wait(GATE_TIMEOUT), "the preview never reached the schedule engine"
        # The compile is held: other requests are served meanwhile.
        assert api.anonymous().get("/healthz").status_code == 200
        assert alice.get("/api/v1/tasks").status_code == 200
        assert not preview.done()
        held_compile.opened.set()
        answered = preview.result(timeout=GATE_TIMEOUT)
    assert answered.status_code == 200, answered.text
    assert [o[11:16] for o in answered.json()["occurrences"]] == ["06:17"] * 3
    assert all(name.startswith("schedule-engine") for name in held_compile.threads), held_compile.threads


@pytest.mark.usefixtures("operator")
def test_the_operator_reconciles_others_while_a_schedule_compiles(
    kube: KubeClient, namespace: str, held_compile: Gate
) -> None:
    template = {"title": "Stretch", "owner": ALICE}
    schedule = {"rrule": HELD_RULE, "start": _start(41), "timeZone": "UTC"}
    kube.create(
        "recurringtasks",
        namespace,
        {"metadata": {"name": "stretch"}, "spec": {"schedule": schedule, "taskTemplate": template}},
    )
    assert held_compile.entered.wait(GATE_TIMEOUT), "the operator never compiled the schedule"
    # While that compile is held, a Task is reconciled all the same.
    other = {"metadata": {"name": "other"}, "spec": {"title": "Other", "owner": ALICE}}
    kube.create("tasks", namespace, other)
    kube.wait_for_status("tasks", namespace, "other", lambda s: s.get("phase") == "Open", what="Open")
    held = kube.get("recurringtasks", namespace, "stretch") or {}
    assert (held.get("status") or {}).get("occurrences") is None
    held_compile.opened.set()
    kube.wait_for_status(
        "recurringtasks", namespace, "stretch", lambda s: s.get("occurrences") == 1, what="occurrence 1"
    )
    assert all(name.startswith("schedule-engine") for name in held_compile.threads), held_compile.threads


def _cheap(days: int) -> dict[str, Any]:
    return {"schedule": {"every": "daily", "start": _start(days), "timeZone": "UTC"}, "count": 2}


def test_one_users_schedule_work_leaves_the_engine_to_others(
    make_api: Callable[..., Api], namespace: str, held_compile: Gate
) -> None:
    api = make_api(namespace)  # the defaults: one engine job per user, two threads
    alice, bob = api.as_user(ALICE), api.as_user(BOB)
    held = {"schedule": {"rrule": HELD_RULE, "start": _start(43), "timeZone": "UTC"}, "count": 3}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(alice.post, "/api/v1/schedules/preview", json=held)
        assert held_compile.entered.wait(GATE_TIMEOUT), "the preview never reached the schedule engine"
        # Alice's next schedule work is refused at once, not queued behind her first.
        again = alice.post("/api/v1/schedules/preview", json=_cheap(44))
        assert again.status_code == 429, again.text
        assert again.headers["Retry-After"] == "1"
        assert again.json()["type"].endswith("/engine-busy")
        recurring = {
            "name": "stretch",
            "schedule": _cheap(45)["schedule"],
            "taskTemplate": {"title": "Stretch"},
        }
        create = alice.post("/api/v1/recurring-tasks", json=recurring)
        assert create.status_code == 429, create.text
        # Bob's preview gets the other thread; reads never touch the engine.
        assert bob.post("/api/v1/schedules/preview", json=_cheap(46)).status_code == 200
        assert bob.get("/api/v1/tasks").status_code == 200
        assert alice.get("/api/v1/tasks").status_code == 200
        assert not first.done()
        held_compile.opened.set()
        answered = first.result(timeout=GATE_TIMEOUT)
    assert answered.status_code == 200, answered.text
    # Her share is back once her work is done.
    assert alice.post("/api/v1/schedules/preview", json=_cheap(44)).status_code == 200


def test_a_full_engine_answers_503(make_api: Callable[..., Api], namespace: str, held_compile: Gate) -> None:
    api = make_api(namespace, engine_queue=1)
    held = {"schedule": {"rrule": HELD_RULE, "start": _start(47), "timeZone": "UTC"}, "count": 3}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.as_user(ALICE).post, "/api/v1/schedules/preview", json=held)
        assert held_compile.entered.wait(GATE_TIMEOUT), "the preview never reached the schedule engine"
        full = api.as_user(BOB).post("/api/v1/schedules/preview", json=_cheap(48))
        assert full.status_code == 503, full.text
        assert full.headers["Retry-After"] == "1"
        held_compile.opened.set()
        assert first.result(timeout=GATE_TIMEOUT).status_code == 200


def test_a_costly_schedule_is_refused_naming_the_field(make_api: Callable[..., Api], namespace: str) -> None:
    alice = make_api(namespace).as_user(ALICE)
    schedule = {"rrule": WORST_VALID_RULE, "start": "2027-01-01T09:00:00", "timeZone": "Europe/Berlin"}
    preview = alice.post("/api/v1/schedules/preview", json={"schedule": schedule, "count": 3})
    assert preview.status_code == 422, preview.text
    problem = preview.json()
    assert "is too costly to compute" in problem["detail"]
    assert problem["errors"] == [{"field": "schedule", "message": problem["detail"]}]
    created = alice.post(
        "/api/v1/recurring-tasks",
        json={"name": "costly", "schedule": schedule, "taskTemplate": {"title": "x"}},
    )
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["field"] == "schedule"
    # A schedule that compiles, but whose hundred next occurrences take too long to find: the count.
    sparse = {"rrule": SPARSE_VALID_RULE, "start": "2027-01-01T09:00:00", "timeZone": "Europe/Berlin"}
    assert alice.post("/api/v1/schedules/preview", json={"schedule": sparse, "count": 5}).status_code == 200
    too_many = alice.post("/api/v1/schedules/preview", json={"schedule": sparse, "count": 100})
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["errors"][0]["field"] == "count"
    assert "ask for fewer" in too_many.json()["detail"]
