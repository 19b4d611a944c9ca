"""The page's views: my tasks, a task, the task and series forms, a series; and the live stream.

Thin, as the REST routes are: each view reads or posts through the same
services the API uses, as the signed-in user, so ownership, validation and
every refusal are the API's. A refused form is shown again with each refusal
at its field.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from todo_operator.api import errors, problems, services, translation
from todo_operator.api import models as m
from todo_operator.api.deps import Components
from todo_operator.api.web import forms, render
from todo_operator.api.web.access import SignedIn, checked_form, checked_write
from todo_operator.api.web.session import PageUser
from todo_operator.store import queries

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
PREVIEW_COUNT = 10
Name = Annotated[str, Query(max_length=253)]
_STATES: tuple[tuple[str, str], ...] = (
    ("todo", "To do"),
    ("overdue", "Overdue"),
    ("open", "Open, not overdue"),
    ("completed", "Completed"),
    ("skipped", "Skipped"),
    ("all", "All"),
)
_SORTS: tuple[tuple[str, str], ...] = (
    ("due", "Due, soonest first"),
    ("-priority", "Priority, highest first"),
    ("next", "Next occurrence"),
    ("-created", "Newest first"),
    ("title", "Title"),
)
ZONES = sorted(zoneinfo.available_timezones())


def _refused(error: Exception) -> dict[str, str]:
    """A refusal of the services (or the cluster) at the form's fields; "" for the form as a whole."""
    if isinstance(error, forms.FormInvalid):
        return error.errors
    problem = translation.translate(error)
    if problem.status >= 500:
        raise error
    fields = forms.refusal_fields([(e.field, e.message) for e in problem.errors])
    return fields or {"": problem.detail}


def _status_of(error: Exception) -> int:
    """The status the REST API would answer the same refusal with."""
    return 422 if isinstance(error, forms.FormInvalid) else translation.translate(error).status


def _not_done(request: Request, me: PageUser, error: Exception, *, back: str) -> Response:
    """An action the services refused: why, with the API's status, and the way back."""
    return render.page(
        request,
        "refused.html",
        me,
        title="Not done",
        why=_refused(error),
        back=back,
        status_code=_status_of(error),
    )


_REFUSALS: tuple[type[Exception], ...] = (
    forms.FormInvalid,
    errors.Refused,
    problems.Problem,
    *translation.REFUSED_BY_OTHERS,
)


# ---------------------------------------------------------------------------------- my tasks


def _list_query(state: str, priority: list[str], tag: str, q: str, sort: str) -> services.TaskListQuery:
    key, descending = services.parse_sort(sort if sort in dict(_SORTS) else "due")
    chosen = tuple(sorted(p for p in set(priority) if p in ("low", "medium", "high", "urgent")))
    state_filter: queries.TaskState | None = None if state == "all" else state  # type: ignore[assignment]
    return services.TaskListQuery(
        state=state_filter,
        priorities=chosen,
        tags=tuple(forms.Values([("tags", tag)]).get("tags").lower().split()),
        text=q.strip() or None,
        sort=key,
        descending=descending,
    )


@router.get("/", response_class=HTMLResponse)
async def my_tasks(
    request: Request,
    me: SignedIn,
    components: Components,
    state: Annotated[str, Query(max_length=20)] = "todo",
    priority: Annotated[list[str] | None, Query(max_length=4)] = None,
    tag: Annotated[str, Query(max_length=50)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    sort: Annotated[str, Query(max_length=20)] = "due",
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    fragment: bool = False,
) -> Response:
    state = state if state in dict(_STATES) else "todo"
    query = _list_query(state, priority or [], tag, q, sort)
    position = components.web.live.position()
    found = await components.tasks.list(user=me.user, query=query, cursor=cursor, limit=PAGE_SIZE)
    context: dict[str, Any] = {
        "tasks": found.items,
        "next_cursor": found.next_cursor,
        "now": components.clock.now(),
        "filters": {"state": state, "priority": priority or [], "tag": tag, "q": q, "sort": sort},
        "states": _STATES,
        "sorts": _SORTS,
        "live_from": position,
    }
    template = "_task_list.html" if fragment else "tasks.html"
    return render.page(request, template, me, title="My tasks", **context)


# ---------------------------------------------------------------------------------- a task


async def _task_reminders(components: Components, me: PageUser, task: m.TaskPublic) -> list[m.ReminderPublic]:
    found = await components.reminders.list(
        user=me.user, cursor=None, limit=components.settings.max_page_size
    )
    return [reminder for reminder in found.items if reminder.task == task.name]


@router.get("/tasks/new", response_class=HTMLResponse)
async def new_task(request: Request, me: SignedIn) -> Response:
    return render.page(request, "task_form.html", me, title="New task", task=None, values={}, errors={})


@router.post("/tasks/new")
async def create_task(request: Request, me: SignedIn, components: Components) -> Response:
    values = await checked_write(request, me, components)
    try:
        created = await components.tasks.create(user=me.user, body=forms.task_create(values))
    except _REFUSALS as error:
        return _form_again(request, me, "task_form.html", "New task", values, _refused(error), task=None)
    return RedirectResponse(f"/tasks/{created.value.name}", status_code=303)


def _form_again(
    request: Request,
    me: PageUser,
    template: str,
    title: str,
    values: forms.Values,
    refused: dict[str, str],
    **context: Any,
) -> Response:
    shown = {name: values.all(name) if name in _REPEATED else values.get(name) for name, _ in values.pairs}
    return render.page(
        # 200: the form again, with the refusals at their fields (a 4xx document is a console error).
        request,
        template,
        me,
        title=title,
        values=shown,
        errors=refused,
        **context,
    )


_REPEATED = frozenset({"remind", "weekday", "month"})


@router.get("/tasks/{name}", response_class=HTMLResponse)
async def task_page(request: Request, name: str, me: SignedIn, components: Components) -> Response:
    task = (await components.tasks.get(user=me.user, name=name)).value
    history: m.Occurrences | None = None
    series: m.RecurringTaskPublic | None = None
    if task.recurring_task:
        series = await _live_series(components, me, task.recurring_task)
        if series is not None:
            history = await components.recurring_tasks.occurrences(user=me.user, name=series.name, count=5)
    context = {
        "task": task,
        "series": series,
        "history": history,
        "reminders": await _task_reminders(components, me, task) if task.live else [],
        "now": components.clock.now(),
        "live_from": components.web.live.position(),
    }
    return render.page(request, "task.html", me, title=task.title, **context)


async def _live_series(components: Components, me: PageUser, name: str) -> m.RecurringTaskPublic | None:
    try:
        found: m.RecurringTaskPublic = (await components.recurring_tasks.get(user=me.user, name=name)).value
    except errors.NotFound:
        return None
    return found


def task_values(task: m.TaskPublic) -> dict[str, Any]:
    offsets = {reminder.get("before") for reminder in task.reminders}
    chosen = [
        choice for choice, duration in (("1h", "1h"), ("1d", "1d"), ("1w", "7d")) if duration in offsets
    ]
    custom = [str(b) for b in offsets if b and b not in ("1h", "1d", "7d")]
    return {
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "tags": " ".join(task.tags),
        "due_instant": task.due_at.isoformat() if task.due_at else "",
        "remind": chosen,
        "remind_custom": custom[0] if custom else "",
    }


@router.get("/tasks/{name}/edit", response_class=HTMLResponse)
async def edit_task(request: Request, name: str, me: SignedIn, components: Components) -> Response:
    task = (await components.tasks.get(user=me.user, name=name)).value
    values = task_values(task)
    return render.page(
        request, "task_form.html", me, title=f"Edit {task.title}", task=task, values=values, errors={}
    )


@router.post("/tasks/{name}/edit")
async def update_task(request: Request, name: str, me: SignedIn, components: Components) -> Response:
    values = await checked_write(request, me, components)
    task = (await components.tasks.get(user=me.user, name=name)).value
    try:
        await components.tasks.update(user=me.user, name=name, body=forms.task_update(values), if_match=None)
    except _REFUSALS as error:
        return _form_again(
            request, me, "task_form.html", f"Edit {task.title}", values, _refused(error), task=task
        )
    return RedirectResponse(f"/tasks/{name}", status_code=303)


TaskAction = Literal["complete", "reopen", "skip", "delete"]


@router.post("/tasks/{name}/{action}")
async def act_on_task(
    request: Request, name: str, action: TaskAction, me: SignedIn, components: Components
) -> Response:
    await checked_write(request, me, components)
    tasks, user = components.tasks, me.user
    try:
        if action == "complete":
            await tasks.complete(user=user, name=name, if_match=None)
        elif action == "reopen":
            await tasks.update(user=user, name=name, body=m.TaskUpdate(completed=False), if_match=None)
        elif action == "skip":
            await tasks.skip(user=user, name=name, if_match=None)
        else:
            await tasks.delete(user=user, name=name, if_match=None)
    except _REFUSALS as error:
        return _not_done(request, me, error, back=f"/tasks/{name}")
    return RedirectResponse("/" if action in ("skip", "delete") else f"/tasks/{name}", status_code=303)


# ---------------------------------------------------------------------------------- series


@router.get("/series", response_class=HTMLResponse)
async def series_list(request: Request, me: SignedIn, components: Components) -> Response:
    found = await components.recurring_tasks.list(
        user=me.user, cursor=None, limit=components.settings.max_page_size
    )
    return render.page(request, "series_list.html", me, title="Recurring tasks", series=found.items)


@router.get("/series/new", response_class=HTMLResponse)
async def new_series(request: Request, me: SignedIn) -> Response:
    values = {"every": "weekly", "interval": "1", "mode": "simple", "on": "day", "ends": "never"}
    return render.page(
        request,
        "series_form.html",
        me,
        title="New recurring task",
        series=None,
        values=values,
        errors={},
        zones=ZONES,
    )


@router.post("/series/new")
async def create_series(request: Request, me: SignedIn, components: Components) -> Response:
    values = await checked_write(request, me, components)
    try:
        created = await components.recurring_tasks.create(user=me.user, body=forms.recurring_create(values))
    except _REFUSALS as error:
        return _form_again(
            request,
            me,
            "series_form.html",
            "New recurring task",
            values,
            _refused(error),
            series=None,
            zones=ZONES,
        )
    return RedirectResponse(f"/series/{created.value.name}", status_code=303)


@router.post("/series/preview")
async def preview(request: Request, me: SignedIn, components: Components) -> Response:
    """The next occurrences of the form as it stands (JSON for the page's script), or its refusals."""
    values = await checked_form(request, me)
    components.preview_limiter.check(me.user.id, now=components.clock.now())
    try:
        result = await components.recurring_tasks.preview(
            forms.preview_request(values, count=PREVIEW_COUNT), user=me.user
        )
    except _REFUSALS as error:
        # 200: a refusal is the preview's answer while the user types, not a failed request.
        return JSONResponse({"errors": _refused(error)})
    return JSONResponse(
        {
            "rule": result.rule,
            "timeZone": result.time_zone,
            "occurrences": [o.isoformat() for o in result.occurrences],
        }
    )


@router.get("/series/{name}", response_class=HTMLResponse)
async def series_page(request: Request, name: str, me: SignedIn, components: Components) -> Response:
    series = (await components.recurring_tasks.get(user=me.user, name=name)).value
    occurrences = await components.recurring_tasks.occurrences(user=me.user, name=name, count=PREVIEW_COUNT)
    return render.page(
        request,
        "series.html",
        me,
        title=series.title,
        series=series,
        occurrences=occurrences,
        now=components.clock.now(),
        live_from=components.web.live.position(),
    )


def series_values(series: m.RecurringTaskPublic) -> dict[str, Any]:
    schedule, template = series.schedule, series.task_template
    offsets = [str(r.get("before")) for r in template.get("reminders") or [] if r.get("before")]
    return {
        "mode": "advanced",
        "rrule": schedule.get("rrule")
        or f"FREQ={str(schedule.get('every', 'weekly')).upper()};INTERVAL={schedule.get('interval') or 1}",
        "start": schedule.get("start", ""),
        "time_zone": schedule.get("timeZone", "UTC"),
        "ends": "until" if schedule.get("until") else "count" if schedule.get("count") else "never",
        "until": schedule.get("until", ""),
        "count": str(schedule.get("count") or ""),
        "anchor": series.anchor,
        "title": template.get("title", ""),
        "description": template.get("description", ""),
        "priority": template.get("priority", "medium"),
        "tags": " ".join(template.get("tags") or []),
        "remind": [c for c, d in (("1h", "1h"), ("1d", "1d"), ("1w", "7d")) if d in offsets],
        "remind_custom": next((o for o in offsets if o not in ("1h", "1d", "7d")), ""),
    }


@router.get("/series/{name}/edit", response_class=HTMLResponse)
async def edit_series(request: Request, name: str, me: SignedIn, components: Components) -> Response:
    series = (await components.recurring_tasks.get(user=me.user, name=name)).value
    return render.page(
        request,
        "series_form.html",
        me,
        title=f"Edit {series.title}",
        series=series,
        values=series_values(series),
        errors={},
        zones=ZONES,
    )


@router.post("/series/{name}/edit")
async def update_series(request: Request, name: str, me: SignedIn, components: Components) -> Response:
    values = await checked_write(request, me, components)
    series = (await components.recurring_tasks.get(user=me.user, name=name)).value
    try:
        await components.recurring_tasks.update(
            user=me.user, name=name, body=forms.recurring_update(values), if_match=None
        )
    except _REFUSALS as error:
        return _form_again(
            request,
            me,
            "series_form.html",
            f"Edit {series.title}",
            values,
            _refused(error),
            series=series,
            zones=ZONES,
        )
    return RedirectResponse(f"/series/{name}", status_code=303)


SeriesAction = Literal["suspend", "resume", "delete"]


@router.post("/series/{name}/{action}")
async def act_on_series(
    request: Request, name: str, action: SeriesAction, me: SignedIn, components: Components
) -> Response:
    await checked_write(request, me, components)
    series = components.recurring_tasks
    try:
        if action == "delete":
            await series.delete(user=me.user, name=name, if_match=None)
        else:
            await series.set_suspended(user=me.user, name=name, suspend=action == "suspend", if_match=None)
    except _REFUSALS as error:
        return _not_done(request, me, error, back=f"/series/{name}")
    return RedirectResponse("/series" if action == "delete" else f"/series/{name}", status_code=303)


# ---------------------------------------------------------------------------------- live


@router.get("/live")
async def live(
    me: SignedIn,
    components: Components,
    since: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> EventSourceResponse:
    """The owner's task updates as server-sent events, from the position the page was rendered at."""
    hub = components.web.live

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for event in hub.follow(me.user.id, since=last_event_id or since):
            yield ServerSentEvent(data=json.dumps(event.data), event=event.kind, id=event.id)

    return EventSourceResponse(events(), ping=15, send_timeout=10, headers={"Cache-Control": "no-store"})
