"""``todo-operator preview``: print the upcoming occurrences of a schedule.

For people writing a RecurringTask: it answers "what will this rule do?"
with the same engine the operator uses, without a cluster. It imports the
recurrence engine only (no Kopf, web framework or database driver), so it
starts fast and works anywhere the package is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from todo_operator.domain import recurrence
from todo_operator.usage import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    form = parser.add_mutually_exclusive_group(required=True)
    form.add_argument("--rrule", help="an RFC 5545 RRULE, e.g. 'FREQ=MONTHLY;BYDAY=-1FR'")
    form.add_argument("--every", choices=["daily", "weekly", "monthly", "yearly"], help="the simple form")
    parser.add_argument("--interval", type=int, default=1, help="with --every: every N periods (default 1)")
    parser.add_argument(
        "--start",
        required=True,
        help="first due time; without an offset, wall-clock time in --time-zone",
    )
    parser.add_argument("--time-zone", default="UTC", help="IANA time zone (default UTC)")
    parser.add_argument("--until", help="last possible occurrence (wall-clock time or an instant)")
    parser.add_argument("--count", type=int, help="number of occurrences")
    parser.add_argument(
        "--exdate",
        action="append",
        default=[],
        help="an occurrence to skip (repeatable)",
    )
    parser.add_argument(
        "--rdate",
        action="append",
        default=[],
        help="an extra occurrence beside the rule's (repeatable)",
    )
    parser.add_argument("--after", help="show occurrences strictly after this moment")
    parser.add_argument("--limit", type=int, default=10, help="how many occurrences to print (default 10)")
    parser.add_argument("--output", choices=["text", "json"], default="text", help="text (default) or json")
    parser.add_argument(
        "--limits",
        choices=["operator", "none"],
        default="operator",
        help="operator (default): refuse what the operator refuses; none: the engine's own answer"
        " for any rule, with a note on stderr naming the operator's limit it breaks",
    )


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    zone = _zone(args.time_zone)
    spec = recurrence.ScheduleSpec(
        rrule=args.rrule,
        every=args.every,
        interval=args.interval,
        start=_moment("--start", args.start),
        time_zone=args.time_zone,
        until=None if args.until is None else _moment("--until", args.until),
        count=args.count,
        exdates=tuple(_moment("--exdate", exdate) for exdate in args.exdate),
        rdates=tuple(_moment("--rdate", rdate) for rdate in args.rdate),
    )
    schedule = _compile(spec, limits=recurrence.Limits() if args.limits == "operator" else None)
    if args.after is None:
        occurrences = schedule.first(args.limit)
    else:
        after = _moment("--after", args.after)
        if after.tzinfo is None:
            after = after.replace(tzinfo=zone)  # wall-clock time in the schedule's zone
        occurrences = _first_after(schedule, after=after, limit=args.limit)
    if args.output == "json":
        print(json.dumps([occurrence.isoformat() for occurrence in occurrences]))
    else:
        if not occurrences:
            print("no occurrences")
        for occurrence in occurrences:
            print(f"{occurrence.isoformat()}  {occurrence:%a %d %b %Y %H:%M} {occurrence.tzname()}")
    return 0


def _compile(spec: recurrence.ScheduleSpec, *, limits: recurrence.Limits | None) -> recurrence.Recurrence:
    """The schedule under ``limits``; with None, under the engine's own bounds only.

    Without the operator's limits, a schedule the operator would refuse is still
    shown, after a note (on stderr, so --output json stays one document) that
    says which of its limits the schedule breaks.
    """
    try:
        if limits is not None:
            return recurrence.Recurrence.compile(spec, limits=limits)
        schedule = recurrence.Recurrence.compile(spec, limits=recurrence.Limits.engine_only())
    except recurrence.ScheduleError as error:
        raise UsageError(str(error)) from None
    try:
        recurrence.Recurrence.compile(spec)
    except recurrence.ScheduleError as error:
        print(f"note: the operator would refuse this schedule: {error}", file=sys.stderr)
    return schedule


def _first_after(schedule: recurrence.Recurrence, *, after: datetime, limit: int) -> list[datetime]:
    found: list[datetime] = []
    moment: datetime | None = after
    while moment is not None and len(found) < limit:
        moment = schedule.next_after(moment)
        if moment is not None:
            found.append(moment)
    return found


def _zone(name: str) -> ZoneInfo:
    try:
        return recurrence.load_zone(name)
    except recurrence.ScheduleError as error:
        raise UsageError(str(error)) from None


def _moment(flag: str, text: str) -> datetime:
    """An ISO 8601 date-time; naive means wall-clock time in the schedule's zone. "Z" is accepted."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{flag} must be a date and time like 2026-01-30T17:00, got {text!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC) if value.utcoffset() is not None else value.replace(tzinfo=None)
    return value
