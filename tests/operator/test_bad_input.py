"""Bad input: refused by the API server with the field named, or reported in status — never looped on."""

from __future__ import annotations

from typing import Any

import pytest

from tests import kstatus
from tests.domain.recurrence.test_compile_budget import WORST_VALID_RULE
from tests.kubeclient import ApiError, KubeClient, condition
from tests.operator.test_operator_loop import recurring_task, wait_current

pytestmark = pytest.mark.usefixtures("operator")


def _with(path: str, value: Any) -> dict[str, Any]:
    manifest = recurring_task("bad")
    *parents, leaf = path.split(".")
    node = manifest["spec"]
    for parent in parents:
        node = node[parent]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return manifest


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        (_with("taskTemplate.title", None), "spec.taskTemplate.title"),
        (_with("schedule.interval", -1), "spec.schedule.interval"),
        (_with("schedule.every", "fortnightly"), "spec.schedule.every"),
        (_with("schedule.timeZone", "Mars/Olympus"), "spec.schedule.timeZone"),
        (_with("schedule.rrule", "FREQ=DAILY"), "spec.schedule"),
        (_with("taskTemplate.owner", "not-an-address"), "spec.taskTemplate.owner"),
        (_with("anchor", "whenever"), "spec.anchor"),
    ],
    ids=[
        "missing-title",
        "negative-interval",
        "unknown-frequency",
        "unknown-zone",
        "rrule-and-every",
        "bad-owner",
        "bad-anchor",
    ],
)
def test_the_api_refuses_bad_recurring_tasks_naming_the_field(
    kube: KubeClient, namespace: str, manifest: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        kube.create("recurringtasks", namespace, manifest)
    assert refused.value.code == 422
    assert refused.value.status["reason"] == "Invalid"
    causes = refused.value.status["details"]["causes"]
    assert field in {cause["field"] for cause in causes}, causes
    assert field in refused.value.status["message"]
    assert kube.list("recurringtasks", namespace) == []
    assert kube.list("tasks", namespace) == []


def test_a_rule_that_never_matches_is_reported_not_retried(kube: KubeClient, namespace: str) -> None:
    # February 30th passes the schema (a valid RRULE shape) but never occurs (F16).
    manifest = recurring_task("never", rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")
    del manifest["spec"]["schedule"]["every"]
    kube.create("recurringtasks", namespace, manifest)

    body = kube.wait_for_status(
        "recurringtasks",
        namespace,
        "never",
        lambda status: condition(status).get("status") == "False",
        what="Ready=False",
    )
    ready = condition(body["status"])
    assert ready["reason"] == "InvalidSchedule"
    assert ready["message"].startswith("spec.schedule: ")
    warnings = kube.wait_for(
        "a Warning event",
        lambda: [
            e
            for e in kube.events(namespace, "never")
            if e["type"] == "Warning" and e["reason"] == "InvalidSchedule"
        ],
    )
    assert warnings[0]["message"] == ready["message"]
    # Flux's health checks (kstatus) see it failed, with the reason a person can act on.
    assert kstatus.compute(body) == ("Failed", ready["message"])

    # Other objects are unaffected; by the time a later one is done, the bad one was not retried.
    kube.create("recurringtasks", namespace, recurring_task("fine"))
    fine = wait_current(kube, namespace, "fine", occurrences=1)
    assert kstatus.compute(fine) == ("Current", "Resource is current")
    assert [c["type"] for c in fine["status"]["conditions"]] == ["Ready"], "no Stalled left behind"
    assert len([e for e in kube.events(namespace, "never") if e["reason"] == "InvalidSchedule"]) == 1
    assert [t["metadata"]["ownerReferences"][0]["name"] for t in kube.list("tasks", namespace)] == ["fine"]


def test_a_costly_rule_is_reported_as_an_invalid_schedule(kube: KubeClient, namespace: str) -> None:
    # Valid, but its checks cost more than the compile budget (about 0.2 s of CPU before it).
    manifest = recurring_task("costly", rrule=WORST_VALID_RULE)
    del manifest["spec"]["schedule"]["every"]
    kube.create("recurringtasks", namespace, manifest)
    body = kube.wait_for_status(
        "recurringtasks",
        namespace,
        "costly",
        lambda status: condition(status).get("status") == "False",
        what="Ready=False",
    )
    ready = condition(body["status"])
    assert ready["reason"] == "InvalidSchedule"
    assert ready["message"].startswith("spec.schedule: the rule FREQ=MINUTELY;")
    assert "is too costly to compute" in ready["message"]
    warnings = kube.wait_for(
        "a Warning event",
        lambda: [e for e in kube.events(namespace, "costly") if e["reason"] == "InvalidSchedule"],
    )
    assert warnings[0]["message"] == ready["message"]
    assert kube.list("tasks", namespace) == []


def test_fixing_the_rule_recovers(kube: KubeClient, namespace: str) -> None:
    manifest = recurring_task("never", rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")
    del manifest["spec"]["schedule"]["every"]
    kube.create("recurringtasks", namespace, manifest)
    kube.wait_for_status(
        "recurringtasks",
        namespace,
        "never",
        lambda s: condition(s).get("status") == "False",
        what="Ready=False",
    )
    kube.patch(
        "recurringtasks",
        namespace,
        "never",
        {"spec": {"schedule": {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28"}}},
    )
    body = wait_current(kube, namespace, "never", occurrences=1)
    assert body["status"]["observedGeneration"] == 2
    # Fixed: Stalled is gone, not left False beside Ready (kstatus reads it as Current).
    assert [c["type"] for c in body["status"]["conditions"]] == ["Ready"]
    assert kstatus.compute(body)[0] == "Current"


def _task(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"title": "Pay rent", "owner": "alice@example.com", **spec},
    }


def _reminder(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "todo.dev/v1alpha1",
        "kind": "Reminder",
        "metadata": {"name": name},
        "spec": {"taskRef": {"name": "rent"}, "at": "2026-12-09T18:00:00Z", **spec},
    }


@pytest.mark.parametrize(
    ("plural", "manifest", "field", "message"),
    [
        ("tasks", _task("crlf", title="Pay rent\r\nBcc: x@evil.example"), "spec.title", "must be one line"),
        ("tasks", _task("cr", title="Pay rent\rBcc: x@evil.example"), "spec.title", "must be one line"),
        ("tasks", _task("tab", title="Pay\trent"), "spec.title", "must be one line"),
        ("tasks", _task("ls", title="Pay\u2028rent"), "spec.title", "must be one line"),
        ("tasks", _task("bell", description="ring\x07"), "spec.description", "other than line breaks"),
        ("tasks", _task("nul", description="a\x00b"), "spec.description", "other than line breaks"),
        (
            "recurringtasks",
            _with("taskTemplate.title", "Review\nBcc: x@evil.example"),
            "spec.taskTemplate.title",
            "must be one line",
        ),
        ("reminders", _reminder("esc", message="\x1b[31mred"), "spec.message", "other than line breaks"),
        ("reminders", _reminder("c1", message="a\x85b"), "spec.message", "other than line breaks"),
    ],
    ids=["title-crlf", "title-cr", "title-tab", "title-ls", "desc-bel", "desc-nul", "template", "esc", "c1"],
)
def test_control_characters_are_refused_where_they_have_no_meaning(
    kube: KubeClient, namespace: str, plural: str, manifest: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ApiError) as refused:
        kube.create(plural, namespace, manifest)
    assert refused.value.code == 422
    causes = refused.value.status["details"]["causes"]
    assert field in {cause["field"] for cause in causes}, causes
    assert message in refused.value.status["message"]
    assert kube.list(plural, namespace) == []


def test_line_breaks_and_tabs_are_kept_where_text_has_lines(kube: KubeClient, namespace: str) -> None:
    kube.create("tasks", namespace, _task("lines", description="1. call\r\n2. pay\n\tthen file"))
    kube.create("reminders", namespace, _reminder("lines", message="Bring:\n- passport\n- photo"))
    (task,) = kube.list("tasks", namespace)
    assert task["spec"]["description"] == "1. call\r\n2. pay\n\tthen file"
