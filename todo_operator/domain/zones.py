"""Time zone names: the ones we know, and what to say of one we do not.

The names come from the pinned ``tzdata`` package, not the host's
/usr/share/zoneinfo, so the generated CRDs are identical everywhere and the
operator, the API and ``preview`` agree on what is a zone.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources


@functools.cache
def known_time_zones() -> tuple[str, ...]:
    """The IANA zone names of the pinned ``tzdata`` package, sorted."""
    zones = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return tuple(sorted(set(zones) | {"UTC"}))


@functools.cache
def _by_folded_name() -> dict[str, str]:
    return {zone.casefold(): zone for zone in known_time_zones()}


def suggestion(name: str) -> str | None:
    """The known zone ``name`` was probably meant as: the same name in other case
    (``europe/london``), else the closest spelling (``Europe/Londn``); None if none is close."""
    folded = _by_folded_name()
    if name.casefold() in folded:
        return folded[name.casefold()]
    close = difflib.get_close_matches(name.casefold(), folded, n=1, cutoff=0.85)
    return folded[close[0]] if close else None


def unknown_time_zone(name: str) -> str:
    """The one message for a zone name that is not known, with a suggestion when one is close."""
    meant = suggestion(name)
    hint = f"did you mean {meant!r}?" if meant else "use an IANA name such as 'Europe/Berlin'"
    return f"unknown time zone {name!r} ({hint})"
