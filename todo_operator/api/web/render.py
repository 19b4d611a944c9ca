"""Rendering the page's views: Jinja2 templates that ship in the package, and what they show.

Times go out as ``<time datetime="…">`` in UTC; the page's script writes them
in the browser's zone (and the series' zone beside it where the two differ),
so the server never guesses the reader's zone. Without the script the UTC
text stays, correct if less friendly.
"""

from __future__ import annotations

import importlib.resources
import pathlib
import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from todo_operator.api import models as m
from todo_operator.api.web import forms
from todo_operator.api.web.session import CSRF_FIELD, PageUser

PACKAGE = pathlib.Path(str(importlib.resources.files("todo_operator.api.web")))
STATIC = PACKAGE / "static"
DUE_SOON = timedelta(hours=24)

templates = Jinja2Templates(directory=str(PACKAGE / "templates"))


def utc_text(instant: datetime | None) -> str:
    return instant.astimezone(zoneinfo.ZoneInfo("UTC")).strftime("%a %d %b %Y %H:%M UTC") if instant else ""


def in_zone(instant: datetime | None, zone: str) -> str:
    """The instant as wall time in ``zone`` (the series' own), for the page to show beside the reader's."""
    if instant is None:
        return ""
    return instant.astimezone(forms.zone(zone)).strftime("%a %d %b %Y %H:%M")


def urgency(task: m.TaskPublic, *, now: datetime) -> str:
    """overdue, soon (due within a day) or "": how the list marks a row."""
    if task.completed or not task.live or task.due_at is None:
        return ""
    if task.due_at < now:
        return "overdue"
    return "soon" if task.due_at - now <= DUE_SOON else ""


templates.env.globals.update(
    utc_text=utc_text,
    in_zone=in_zone,
    urgency=urgency,
    CSRF_FIELD=CSRF_FIELD,
    REMINDER_CHOICES=forms.REMINDER_CHOICES,
    WEEKDAYS=forms.WEEKDAYS,
    POSITIONS=forms.POSITIONS,
)


def page(
    request: Request,
    name: str,
    page_user: PageUser | None,
    *,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"title": title, "me": page_user, **context},
        status_code=status_code,
        # The page's own assets only: no inline script, no third party (docs/WEB.md).
        headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self';"
            " script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin",
            "X-Content-Type-Options": "nosniff",
        },
    )
