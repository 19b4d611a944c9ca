"""F8: recurring tasks across daylight-saving changes, through the running operator.

The recurrence engine's DST policy is pinned by unit tests; here the same
policy must survive the whole path a user sees: RecurringTask -> occurrence
Tasks (objects and PostgreSQL rows) -> completion -> the next occurrence.
docs/RECURRENCE.md, "Time zones and daylight saving time":

* a wall-clock time keeps its wall-clock time across the change;
* a time in the spring-forward gap moves forward by the gap (02:30 -> 03:30);
* a time repeated at fall-back is its first, earlier instant;
* no instant is produced twice (an HOURLY rule gives the repeated hour once,
  and the gap's hour lands on the next one, kept once).

Three zones, both hemispheres, both changes each: Europe/Berlin (last Sunday
of March / October), America/New_York (second Sunday of March / first of
November, at 02:00 local) and Australia/Sydney (southern: forward on the first
Sunday of October, back on the first Sunday of April). The transitions are
those of 2027: the emulator stamps objects with real time and a schedule
starts no earlier than its object was created. Expected instants are written
out by hand from the policy (and were cross-checked with ``zoneinfo``), not
computed with the engine under test.

Each schedule has COUNT=4 and every occurrence is completed in turn, so the
test walks four consecutive occurrences over the change and ends each
RecurringTask ``Ended``: one occurrence per slot, none lost, none doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.faults.lifecycle.record import assert_whole_record
from tests.faults.lifecycle.stack import Json, Stack, metric, recurring_task
from tests.kubeclient import condition


@dataclass(frozen=True)
class Crossing:
    name: str
    schedule: Json
    expected: tuple[str, ...]  # the occurrences' instants, UTC


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _daily(start: str, zone: str) -> Json:
    return {"every": "daily", "start": start, "timeZone": zone, "count": 4}


def _hourly(start: str, zone: str) -> Json:
    return {"rrule": "FREQ=HOURLY", "start": start, "timeZone": zone, "count": 4}


ZONES: dict[str, list[Crossing]] = {
    "Europe/Berlin": [
        # 28 March 2027 02:00 CET -> 03:00 CEST: 02:30 does not exist and becomes 03:30 CEST.
        Crossing(
            "daily-spring",
            _daily("2027-03-26T02:30:00", "Europe/Berlin"),
            ("2027-03-26T01:30Z", "2027-03-27T01:30Z", "2027-03-28T01:30Z", "2027-03-29T00:30Z"),
        ),
        # 31 October 2027 03:00 CEST -> 02:00 CET: 02:30 happens twice; the first (CEST) is it.
        Crossing(
            "daily-fall",
            _daily("2027-10-29T02:30:00", "Europe/Berlin"),
            ("2027-10-29T00:30Z", "2027-10-30T00:30Z", "2027-10-31T00:30Z", "2027-11-01T01:30Z"),
        ),
        # 00:00, 01:00 CET, then 02:00 (moved onto 03:00 CEST, kept once), 04:00 CEST.
        Crossing(
            "hourly-spring",
            _hourly("2027-03-28T00:00:00", "Europe/Berlin"),
            ("2027-03-27T23:00Z", "2027-03-28T00:00Z", "2027-03-28T01:00Z", "2027-03-28T02:00Z"),
        ),
        # 01:00 CEST, 02:00 CEST (the repeated hour, once), 03:00 CET, 04:00 CET.
        Crossing(
            "hourly-fall",
            _hourly("2027-10-31T01:00:00", "Europe/Berlin"),
            ("2027-10-30T23:00Z", "2027-10-31T00:00Z", "2027-10-31T02:00Z", "2027-10-31T03:00Z"),
        ),
    ],
    "America/New_York": [
        # 14 March 2027 02:00 EST -> 03:00 EDT.
        Crossing(
            "daily-spring",
            _daily("2027-03-12T02:30:00", "America/New_York"),
            ("2027-03-12T07:30Z", "2027-03-13T07:30Z", "2027-03-14T07:30Z", "2027-03-15T06:30Z"),
        ),
        # 7 November 2027 02:00 EDT -> 01:00 EST: 01:30 happens twice.
        Crossing(
            "daily-fall",
            _daily("2027-11-05T01:30:00", "America/New_York"),
            ("2027-11-05T05:30Z", "2027-11-06T05:30Z", "2027-11-07T05:30Z", "2027-11-08T06:30Z"),
        ),
        Crossing(
            "hourly-spring",
            _hourly("2027-03-14T00:00:00", "America/New_York"),
            ("2027-03-14T05:00Z", "2027-03-14T06:00Z", "2027-03-14T07:00Z", "2027-03-14T08:00Z"),
        ),
        Crossing(
            "hourly-fall",
            _hourly("2027-11-07T00:00:00", "America/New_York"),
            ("2027-11-07T04:00Z", "2027-11-07T05:00Z", "2027-11-07T07:00Z", "2027-11-07T08:00Z"),
        ),
    ],
    "Australia/Sydney": [
        # Southern hemisphere: 3 October 2027 02:00 AEST -> 03:00 AEDT.
        Crossing(
            "daily-spring",
            _daily("2027-10-01T02:30:00", "Australia/Sydney"),
            ("2027-09-30T16:30Z", "2027-10-01T16:30Z", "2027-10-02T16:30Z", "2027-10-03T15:30Z"),
        ),
        # 4 April 2027 03:00 AEDT -> 02:00 AEST: 02:30 happens twice.
        Crossing(
            "daily-fall",
            _daily("2027-04-02T02:30:00", "Australia/Sydney"),
            ("2027-04-01T15:30Z", "2027-04-02T15:30Z", "2027-04-03T15:30Z", "2027-04-04T16:30Z"),
        ),
        Crossing(
            "hourly-spring",
            _hourly("2027-10-03T00:00:00", "Australia/Sydney"),
            ("2027-10-02T14:00Z", "2027-10-02T15:00Z", "2027-10-02T16:00Z", "2027-10-02T17:00Z"),
        ),
        Crossing(
            "hourly-fall",
            _hourly("2027-04-04T01:00:00", "Australia/Sydney"),
            ("2027-04-03T14:00Z", "2027-04-03T15:00Z", "2027-04-03T17:00Z", "2027-04-03T18:00Z"),
        ),
    ],
}


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_occurrences_across_both_dst_changes_follow_the_documented_policy(
    cronjob_stack: Stack, zone: str
) -> None:
    stack = cronjob_stack
    ns = stack.new_namespace(f"dst-{zone.split('/')[-1]}")
    crossings = ZONES[zone]
    before = stack.scrape()
    for crossing in crossings:
        stack.kube.create("recurringtasks", ns, recurring_task(crossing.name, schedule=crossing.schedule))

    # Walk each schedule through its four occurrences, completing the current one each time.
    for index in range(1, 5):
        for crossing in crossings:
            status = stack.wait_status(
                "recurringtasks",
                ns,
                crossing.name,
                lambda s, i=index: s.get("occurrences") == i,
                f"occurrence {index}",
            )["status"]
            stack.kube.patch("tasks", ns, status["currentTask"], {"spec": {"completed": True}})
    ended = {
        crossing.name: stack.wait_status(
            "recurringtasks", ns, crossing.name, lambda s: s.get("phase") == "Ended", "Ended"
        )
        for crossing in crossings
    }
    record = assert_whole_record(stack, ns, occurrences={crossing.name: 4 for crossing in crossings})
    after = stack.scrape()

    found = {
        crossing.name: [
            due.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
            for _, due in record.occurrence_dues(ended[crossing.name]["metadata"]["uid"])
        ]
        for crossing in crossings
    }
    assert found == {crossing.name: list(crossing.expected) for crossing in crossings}
    # The objects say the same as the rows, and carry the zone reminder e-mails print times in.
    objects = {
        (t["metadata"]["ownerReferences"][0]["name"], _utc(t["spec"]["dueAt"]))
        for t in stack.objects("tasks", ns)
    }
    assert objects == {(c.name, _utc(due)) for c in crossings for due in c.expected}
    assert {t["metadata"]["annotations"]["todo.dev/time-zone"] for t in stack.objects("tasks", ns)} == {zone}
    # The visible trace: each RecurringTask Ended (condition and Event), four OccurrenceCreated Events each.
    for crossing in crossings:
        assert condition(ended[crossing.name]["status"])["reason"] == "Ended"
        reasons = [event["reason"] for event in stack.kube.events(ns, crossing.name)]
        assert (reasons.count("OccurrenceCreated"), reasons.count("Ended")) == (4, 1), crossing.name
        assert len(record.events("recurringtask.ended", subject=f"{ns}/{crossing.name}")) == 1
    spawned = metric(after, "todo_occurrences_spawned_total") - metric(
        before, "todo_occurrences_spawned_total"
    )
    assert spawned == 4 * len(crossings)
