"""Time zone names: an unknown one is refused with the name it was probably meant as."""

from __future__ import annotations

import pytest

from todo_operator.domain import resources, zones


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("europe/london", "Europe/London"),  # the case of a name typed by hand
        ("AMERICA/NEW_YORK", "America/New_York"),
        ("utc", "UTC"),
        ("Europe/Londn", "Europe/London"),  # a letter missing
        ("Amercia/Chicago", "America/Chicago"),  # two swapped
    ],
)
def test_a_near_miss_is_answered_with_the_zone_it_meant(written: str, meant: str) -> None:
    assert zones.suggestion(written) == meant
    assert zones.unknown_time_zone(written) == f"unknown time zone {written!r} (did you mean {meant!r}?)"


@pytest.mark.parametrize("written", ["Mars/Olympus", "", "../etc/passwd", "Europe"])
def test_a_name_near_no_zone_is_told_what_a_zone_looks_like(written: str) -> None:
    assert zones.suggestion(written) is None
    assert zones.unknown_time_zone(written).endswith("(use an IANA name such as 'Europe/Berlin')")


def test_every_known_zone_is_its_own_suggestion() -> None:
    assert all(zones.suggestion(zone) == zone for zone in zones.known_time_zones())


def test_a_spec_with_a_miscased_zone_is_refused_with_the_suggestion() -> None:
    """What the REST API answers (422) and the operator writes in status, from the same model."""
    with pytest.raises(ValueError, match=r"did you mean 'Europe/London'\?"):
        resources.RecurringTaskSpec.model_validate(
            {
                "schedule": {"every": "daily", "start": "2026-12-04T09:00", "timeZone": "europe/london"},
                "taskTemplate": {"title": "Water the plants", "owner": "alice@example.com"},
            }
        )
