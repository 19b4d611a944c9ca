"""What ``kubectl todo`` shows: rows picked from the objects, and tables shaped like ``kubectl get``.

Pure functions of the objects, the current instant and the user's time zone
(both passed in), so the tests check them with literal values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

import yaml

from todo_operator.domain import resources, tasks

Body = dict[str, Any]
Output = Literal["table", "wide", "yaml", "json", "name"]
Selection = Literal["open", "overdue", "today", "all"]


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def local(moment: datetime, zone: tzinfo) -> datetime | None:
    """``moment`` in ``zone``; None at the calendar's ends (9999-12-31T23:30Z is year 10000 in Berlin)."""
    try:
        return moment.astimezone(zone)
    except OverflowError:
        return None


def owner_of(body: Body) -> str | None:
    spec = body.get("spec") or {}
    owner = (spec.get("taskTemplate") or {}).get("owner") if "taskTemplate" in spec else spec.get("owner")
    return owner if isinstance(owner, str) else None


def phase_of(task: Body, *, now: datetime) -> str:
    """The phase the operator gives the spec now; ``Invalid`` for one it would refuse."""
    try:
        spec = resources.TaskSpec.model_validate(task.get("spec") or {})
    except ValueError:
        return "Invalid"
    return tasks.task_phase(spec, now=now)


def select_tasks(
    bodies: Iterable[Body], *, owner: str | None, selection: Selection, now: datetime, zone: tzinfo
) -> list[Body]:
    """The tasks to list: the owner's (everyone's with None), by ``selection``, soonest due first."""
    today = now.astimezone(zone).date()
    picked = []
    for body in bodies:
        if owner is not None and owner_of(body) != owner:
            continue
        phase = phase_of(body, now=now)
        due = instant((body.get("spec") or {}).get("dueAt"))
        wanted = {
            "all": True,
            "open": phase != "Completed",
            "overdue": phase == "Overdue",
            "today": phase != "Completed" and due is not None and _day(due, zone) == today,
        }[selection]
        if wanted:
            picked.append(body)
    return sorted(picked, key=_due_order)


def _day(moment: datetime, zone: tzinfo) -> object:
    shown = local(moment, zone)
    return None if shown is None else shown.date()


# Keys from a difference, not a conversion to UTC: 0001-01-01T00:00+01:00 is before year 1 in UTC.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _due_order(body: Body) -> tuple[bool, timedelta, str]:
    """Soonest due first, undated last, then by name."""
    due = instant((body.get("spec") or {}).get("dueAt"))
    return due is None, timedelta(0) if due is None else due - _EPOCH, body["metadata"]["name"]


def when(moment: datetime | None, *, now: datetime, zone: tzinfo) -> str:
    """``2026-12-05 09:00 (in 14h)`` in the user's zone; ``-`` for none."""
    if moment is None:
        return "-"
    shown = local(moment, zone)
    if shown is None:
        return moment.isoformat()
    delta = moment - now
    span = _span(abs(delta))
    relative = "now" if span == "0m" else (f"in {span}" if delta > timedelta(0) else f"{span} ago")
    return f"{shown:%Y-%m-%d %H:%M} ({relative})"


def _span(delta: timedelta) -> str:
    """The largest unit that fits, as kubectl's AGE column: 45s → 0m, 90m → 1h, 50h → 2d."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"


def task_rows(
    bodies: Sequence[Body], *, now: datetime, zone: tzinfo, wide: bool, namespaces: bool = False
) -> list[list[str]]:
    """The ``ls`` table; with ``namespaces`` (``-A``) a NAMESPACE column first, as kubectl's."""
    header = ["NAME", "TITLE", "DUE", "PHASE", "PRIORITY", "SERIES"]
    if wide:
        header += ["TAGS", "OWNER"]
    rows = [header]
    for body in bodies:
        spec, status = body.get("spec") or {}, body.get("status") or {}
        phase = phase_of(body, now=now)
        row = [
            body["metadata"]["name"],
            _clip(str(spec.get("title", ""))),
            when(instant(spec.get("dueAt")), now=now, zone=zone),
            f"{phase} !" if phase == "Overdue" else phase,
            str(spec.get("priority", "medium")),
            status.get("recurringTask") or "-",
        ]
        if wide:
            row += [",".join(spec.get("tags") or []) or "-", owner_of(body) or "-"]
        rows.append(row)
    if namespaces:
        names_ = ["NAMESPACE", *(body["metadata"].get("namespace", "") for body in bodies)]
        rows = [[namespace, *row] for namespace, row in zip(names_, rows, strict=True)]
    return rows


def series_rows(bodies: Sequence[Body], *, now: datetime, zone: tzinfo) -> list[list[str]]:
    """``next``: each series by its next due time, soonest first; ended and suspended ones last."""
    rows = [["SERIES", "TITLE", "NEXT DUE", "PHASE", "CURRENT TASK"]]
    for body in sorted(bodies, key=_next_key):
        spec, status = body.get("spec") or {}, body.get("status") or {}
        rows.append(
            [
                body["metadata"]["name"],
                _clip(str((spec.get("taskTemplate") or {}).get("title", ""))),
                when(instant(status.get("nextDueAt")), now=now, zone=zone),
                status.get("phase") or "-",
                status.get("currentTask") or "-",
            ]
        )
    return rows


def _next_key(body: Body) -> tuple[bool, timedelta, str]:
    status = body.get("status") or {}
    due = instant(status.get("nextDueAt")) if status.get("phase") == "Active" else None
    return due is None, timedelta(0) if due is None else due - _EPOCH, body["metadata"]["name"]


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns as ``kubectl get`` lays them out: left-aligned, three spaces apart."""
    if len(rows) <= 1:
        return ""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def document(bodies: Sequence[Body], *, output: Literal["yaml", "json"]) -> str:
    """The objects as ``kubectl get -o yaml|json`` prints several: one ``List``."""
    listed = {"apiVersion": "v1", "kind": "List", "items": list(bodies), "metadata": {}}
    if output == "json":
        return json.dumps(listed, indent=4)
    return yaml.safe_dump(listed, sort_keys=False).rstrip("\n")


def names(bodies: Sequence[Body], *, resource: str) -> str:
    """``-o name``: ``task.todo.dev/<name>`` per line."""
    return "\n".join(f"{resource}/{body['metadata']['name']}" for body in bodies)
