"""The recurrence engine: every part of the operator asks it "when is this due next?".

Pure: standard library, ``zoneinfo`` and python-dateutil only; no I/O, and
time is always a parameter. The pieces:

* :mod:`.rules` reads RRULE text (or ``every`` + ``interval``) into a typed
  rule with errors a user understands, and holds the :class:`Limits`;
* :mod:`.expansion` wraps python-dateutil, which expands rules in wall-clock
  time, and corrects what it gets wrong (unbounded search, cost growing with
  the past, partial first weeks) and where it reads RFC 5545 differently from
  libical;
* :mod:`.schedule` turns wall-clock times into instants with one DST policy
  and implements the two completion anchors.

The user-facing policies are in docs/RECURRENCE.md.
"""

from todo_operator.domain.recurrence.rules import Limits, ScheduleError, ScheduleTooCostly
from todo_operator.domain.recurrence.schedule import (
    Anchor,
    Every,
    Recurrence,
    ScheduleSpec,
    load_zone,
    next_due,
)

__all__ = [
    "Anchor",
    "Every",
    "Limits",
    "Recurrence",
    "ScheduleError",
    "ScheduleSpec",
    "ScheduleTooCostly",
    "load_zone",
    "next_due",
]
