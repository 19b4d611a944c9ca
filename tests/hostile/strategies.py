"""Hypothesis strategies for hostile input: custom resources and schedules as an attacker writes them.

A hostile manifest is a plausible, valid one (so that most of the schema is
reached, not just the first required field) with up to three mutations: a
field replaced by a value of the wrong type, a huge or poisoned string, a
near miss of a valid value (a Cyrillic letter in an e-mail domain, a zone
that does not exist, a date at the edge of the calendar, a rule with absurd
numbers), a field deleted, or an unknown field (deeply nested) added.

The strategies are plain data: the tests decide what must happen to them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from todo_operator.domain import recurrence, resources, zones

Json = Any
Manifest = dict[str, Any]

# How the tests run these: the same cases every run (no randomness, no example database), no
# deadline (a case may meet a slow rule), and several manifests per example, which shares the
# engine's per-example overhead among them (that is what keeps thousands of cases within seconds).
DETERMINISTIC = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
BATCH = 6

# --- strings -------------------------------------------------------------------------------------------

# C0 and C1 controls, DEL, line and paragraph separators: what breaks logs, terminals and parsers.
CONTROL_CHARACTERS = [chr(code) for code in range(32)] + ["\x7f", "\x85", "\u2028", "\u2029"]
# Invisible or direction-changing characters: make two different strings print the same.
INVISIBLE_CHARACTERS = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u202e",
    "\u202d",
    "\u061c",
    "\u00ad",
]
# Letters that look like ASCII ones (Cyrillic, Greek, fullwidth, mathematical bold).
CONFUSABLES = {
    "a": ["а", "ɑ", "ａ", "𝐚"],
    "e": ["е", "ε", "ｅ"],
    "o": ["о", "ο", "０", "𝐨"],
    "i": ["і", "ı", "ｉ"],
    "l": ["ӏ", "1", "ｌ"],
    "c": ["с", "ϲ"],
    "p": ["р", "ρ"],
    "x": ["х", "χ"],
    "y": ["у"],
    "E": ["Е", "Ε"],
    "B": ["В", "Β"],
    "U": ["Ս"],
    "T": ["Т", "Τ"],
    "-": ["‐", "−", "–"],
    "/": ["∕", "⁄", "／"],
    ".": ["․", "。"],
    "@": ["＠"],
}


def confusable(text: str) -> st.SearchStrategy[str]:
    """``text`` with one character swapped for a look-alike (or the text as is, if none can be)."""
    variants = [
        text[:index] + look_alike + text[index + 1 :]
        for index, character in enumerate(text)
        for look_alike in CONFUSABLES.get(character, ())
    ]
    return st.sampled_from(variants or [text])


def poisoned(text: str) -> st.SearchStrategy[str]:
    """``text`` with a control or invisible character (or a NUL) put somewhere in it."""
    return st.tuples(
        st.integers(0, len(text)), st.sampled_from(CONTROL_CHARACTERS + INVISIBLE_CHARACTERS)
    ).map(lambda cut: text[: cut[0]] + cut[1] + text[cut[0] :])


def huge_text() -> st.SearchStrategy[str]:
    """Up to 100,000 characters, built by repetition (hypothesis draws long text slowly)."""
    pieces = st.sampled_from(
        ["x", "é", "😀", "\x00", "a" * 7 + "\u202e", "𝐚", "\U0010ffff", "<script>", "%s%n"]
    )
    return st.tuples(pieces, st.sampled_from([201, 255, 1001, 4001, 32_769, 100_000])).map(
        lambda repeated: repeated[0] * repeated[1]
    )


def hostile_text(valid: str = "Water the plants") -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(""),
        st.just(" "),
        confusable(valid),
        poisoned(valid),
        huge_text(),
        st.text(max_size=40),  # any code point hypothesis likes (it leaves out lone surrogates)
        st.text(alphabet=st.sampled_from(CONTROL_CHARACTERS + INVISIBLE_CHARACTERS), min_size=1, max_size=8),
        st.sampled_from(
            ["'; DROP TABLE tasks; --", "${jndi:ldap://x/a}", "{{7*7}}", "../../etc/passwd", "%00"]
        ),
    )


# --- wrong types and shapes -------------------------------------------------------------------------

ABSURD_INTEGERS = [
    0,
    -1,
    1,
    2,
    366,
    367,
    1000,
    1001,
    10_000,
    10_001,
    2**31,
    2**53 + 1,
    2**63,
    10**30,
    -(10**30),
]


def nested(depth: int, *, as_list: bool) -> Json:
    """A value nested ``depth`` levels deep (the JSON parsers' recursion limits are about 1,000)."""
    value: Json = "bottom"
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


def wrong_type() -> st.SearchStrategy[Json]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(ABSURD_INTEGERS),
        st.floats(allow_nan=False, allow_infinity=False),
        st.just(1.5),
        st.sampled_from(["true", "1", "null", "[]", "{}"]),
    )
    containers = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=6,
    )
    deep = st.tuples(st.integers(20, 120), st.booleans()).map(
        lambda shape: nested(shape[0], as_list=shape[1])
    )
    return st.one_of(scalars, containers, deep)


WRONG_TYPE = wrong_type()


# --- values of particular fields --------------------------------------------------------------------

EMAILS = [
    "alice@example.com",
    "a@b",
    "@example.com",
    "alice@",
    "alice@@example.com",
    "alice@-example.com",
    "alice@exämple.com",
    "alice@example.com\n",
    "alice@example.com, bob@example.com",
    "alice@example.com\r\nBcc: mallory@example.com",
    "x" * 250 + "@example.com",
    "alice@" + "a" * 64 + ".com",
    '"alice"@example.com',
]


def email() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(EMAILS), confusable("alice@example.com"), poisoned("bob@example.com"))


# Instants as users write them in dueAt and at: the edges of the calendar and of the format.
INSTANTS = [
    "2026-12-04T16:00:00Z",
    "2026-12-04T16:00:00+01:00",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-02T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2038-01-19T03:14:08Z",
    "2024-02-29T12:00:00Z",
    "2023-02-29T12:00:00Z",
    "2026-02-30T12:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-12-04T24:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-12-04T16:00:00+24:00",
    "2026-12-04T16:00:00+23:59",
    "2026-12-04T16:00:00-23:59",
    "2026-12-04 16:00:00Z",
    "2026-12-04t16:00:00z",
    "2026-12-04T16:00:00.123456789012Z",
    "2026-12-04T16:00Z",
    "2026-12-04",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59+01:00",
    "10000-01-01T00:00:00Z",
    "+002026-12-04T16:00:00Z",
    "2026-W49-5T16:00:00Z",
]
# Wall-clock times of a schedule (start, until, exdates, rdates), without or with an offset.
LOCAL_TIMES = [
    "2026-01-05T09:00",
    "2026-01-05T09:00:00",
    "2026-01-05T09:00:00Z",
    "2026-01-05T09:00:00+05:30",
    "2026-03-29T02:30",  # in the spring-forward gap in Europe/Berlin
    "2026-10-25T02:30",  # twice in Europe/Berlin
    "0000-01-01T00:00",
    "0001-01-01T00:00",
    "0001-01-01T00:00:00+14:00",
    "1899-12-31T23:59",
    "1900-01-01T00:00",
    "2024-02-29T09:00",
    "2023-02-29T09:00",
    "2026-04-31T09:00",
    "2026-01-05T25:00",
    "2026-01-05T09:60",
    "2999-12-31T23:59",
    "3000-01-01T00:00",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-14:00",
    "2026-01-05T09:00:00.999999999",
    "2026-01-05",
    "2026-1-5T9:00",
]
# Real zones, zones that do not exist, and strings that are not zone names at all.
TIME_ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # half-hour DST
    "Antarctica/Troll",  # two-hour DST
    "Etc/GMT+12",
    "Etc/GMT-14",
    "Mars/Olympus",
    "Europe/Berlin ",
    "europe/berlin",
    "Europe/Berlin\x00",
    "EST5EDT",
    "posixrules",
    "Factory",
    "",
    "../../../etc/passwd",
    "/etc/localtime",
    "Europe/",
    "Europe/Berlin/Mitte",
    "+01:00",
    "GMT+1",
    "CET" * 30,
]
DURATIONS = [
    "1h",
    "30m",
    "1h30m",
    "2d",
    "0m",
    "0d0h0m",
    # Each of these goes back past the year 1 from any dueAt of our time; the last overflows timedelta.
    "740000d",
    "3000000d",
    "9999999d",
    "99999999d",
    "999999999d",
    "99999999999999d",
    "0d99999999999h",
    "9999999999999999",
    "1d1d",
    "1s",
    "h",
    "-1h",
    "1H",
    " 1h",
]
RULES = [
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "RRULE:FREQ=DAILY",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=SECONDLY",
    "FREQ=MINUTELY",
    "FREQ=MINUTELY;INTERVAL=1;COUNT=1000000000",
    "FREQ=DAILY;COUNT=10000",
    "FREQ=DAILY;COUNT=10001",
    "FREQ=DAILY;COUNT=0",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=99999999999999999999",
    "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=366",
    "FREQ=YEARLY;BYSETPOS=-366;BYDAY=MO",
    "FREQ=YEARLY;BYWEEKNO=53;BYYEARDAY=366;BYMONTH=2",
    "FREQ=YEARLY;INTERVAL=10000;BYWEEKNO=48;BYYEARDAY=334",
    "FREQ=HOURLY;INTERVAL=10000;BYHOUR=3",
    "FREQ=DAILY;UNTIL=99991231T235959Z",
    "FREQ=DAILY;UNTIL=00010101",
    "FREQ=DAILY;UNTIL=20260230T000000Z",
    "FREQ=DAILY;BYDAY=" + ",".join(["MO"] * 100),
    "FREQ=DAILY;BYMONTHDAY=" + ",".join(str(day) for day in range(-31, 32) if day),
    "FREQ=DAILY;" + ";".join(["WKST=MO"] * 2),
    "FREQ=DAILY;"
    + "BYHOUR="
    + ",".join(str(hour) for hour in range(24))
    + ";BYMINUTE="
    + ",".join(str(minute) for minute in range(60)),
    "FREQ=DAILY;FREQ=WEEKLY",
    "FREQ=DAILY;X-NAME=1",
    "FREQ=DAILY;;;;",
    "freq=daily;byday=mo",
    "FREQ=DAILY=WEEKLY",
    "FREQ=",
    "=",
    "RRULE:",
    "FREQ=DAILY;" + "X" * 600,
]
RULE_PARTS = {
    "FREQ": ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY", "FORTNIGHTLY", ""],
    "INTERVAL": ["1", "2", "7", "52", "1439", "10000", "10001", "0", "-1", "+1", "1.5", "9" * 20],
    "COUNT": ["1", "3", "10000", "10001", "0", "1000000000", "-5"],
    "UNTIL": ["20271231", "20271231T235959Z", "20271231T235959", "29991231T000000Z", "20260230", "2027", "X"],
    "BYMONTH": ["1", "2", "12", "0", "13", "2,2,2", "-1"],
    "BYMONTHDAY": ["1", "29", "30", "31", "-1", "-31", "0", "32", "1,15,-1"],
    "BYYEARDAY": ["1", "60", "366", "-366", "367", "0", "100,200,300"],
    "BYWEEKNO": ["1", "53", "-53", "54", "0", "20"],
    "BYDAY": ["MO", "MO,WE,FR", "-1FR", "1MO", "53MO", "-54SU", "5FR", "XX", "MO,MO", "+2TU"],
    "BYHOUR": ["0", "9", "23", "24", "-1", "9,17"],
    "BYMINUTE": ["0", "30", "59", "60", "0,1", "0,5,10"],
    "BYSECOND": ["0", "59", "60", "0,1"],
    "BYSETPOS": ["1", "-1", "2", "366", "-366", "367", "0", "1,2,3"],
    "WKST": ["MO", "SU", "XX"],
}


@st.composite
def _assembled_rule(draw: st.DrawFn) -> str:
    names = draw(_RULE_PART_NAMES)
    parts = [f"FREQ={draw(_RULE_PART_VALUES['FREQ'])}"]
    parts += [f"{name}={draw(_RULE_PART_VALUES[name])}" for name in names]
    return ";".join(parts)


_RULE_PART_NAMES = st.lists(st.sampled_from(sorted(set(RULE_PARTS) - {"FREQ"})), max_size=4, unique=True)
_RULE_PART_VALUES = {name: st.sampled_from(values) for name, values in RULE_PARTS.items()}


def rrule_text() -> st.SearchStrategy[str]:
    """Known bombs and near misses, and rules assembled from valid and absurd parts in any order."""
    return st.one_of(
        st.sampled_from(RULES), _assembled_rule(), st.text(alphabet="FREQ=DAILYMO;,0123456789-+", max_size=60)
    )


def resource_name() -> st.SearchStrategy[str]:
    valid = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z", fullmatch=True)
    return st.one_of(
        valid,
        confusable("the-task"),
        st.sampled_from(
            ["", "Task", "-task", "task-", "ta_sk", "a" * 254, "tа" * 3, "task\u200b", "a..b", "ta sk"]
        ),
    )


# --- manifests --------------------------------------------------------------------------------------


def _valid_reminder_offsets() -> st.SearchStrategy[list[dict[str, str]]]:
    entry = st.one_of(
        st.sampled_from(["1h", "30m", "1d", "2h15m"]).map(lambda before: {"before": before}),
        st.sampled_from(["2026-12-04T08:00:00Z", "2027-01-01T00:00:00+01:00"]).map(lambda at: {"at": at}),
    )
    return st.lists(entry, max_size=3, unique_by=lambda item: tuple(sorted(item.items())))


def valid_task_spec() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "title": st.sampled_from(["Water the plants", "Pay rent", "Ünïcödé ✓ task"]),
            "owner": st.sampled_from(["alice@example.com", "bob@example.org"]),
            "dueAt": st.sampled_from(["2026-12-04T16:00:00Z", "2030-01-01T00:00:00+01:00"]),
        },
        optional={
            "description": st.sampled_from(["", "Every plant, including the fern."]),
            "priority": st.sampled_from(["low", "medium", "high", "urgent"]),
            "tags": st.lists(
                st.sampled_from(["home", "work", "team/infra", "v1.2"]), max_size=3, unique=True
            ),
            "reminders": _valid_reminder_offsets(),
            "completed": st.booleans(),
        },
    )


def valid_schedule() -> st.SearchStrategy[dict[str, Any]]:
    by_rule = st.fixed_dictionaries(
        {"rrule": st.sampled_from(RULES[:3]), "start": st.sampled_from(LOCAL_TIMES[:4])},
        optional={"timeZone": st.sampled_from(TIME_ZONES[:8]), "count": st.integers(1, 20)},
    )
    by_every = st.fixed_dictionaries(
        {
            "every": st.sampled_from(["daily", "weekly", "monthly", "yearly"]),
            "start": st.sampled_from(LOCAL_TIMES[:4]),
        },
        optional={
            "interval": st.integers(1, 12),
            "timeZone": st.sampled_from(TIME_ZONES[:8]),
            "until": st.just("2030-01-01T00:00"),
            "exdates": st.just(["2026-01-12T09:00"]),
            "rdates": st.just(["2026-01-14T18:00"]),
        },
    )
    return st.one_of(by_rule, by_every)


def valid_recurring_task_spec() -> st.SearchStrategy[dict[str, Any]]:
    template = st.fixed_dictionaries(
        {"title": st.sampled_from(["Weekly review", "Backup ✓"]), "owner": st.just("alice@example.com")},
        optional={
            "priority": st.sampled_from(["low", "high"]),
            "tags": st.just(["team"]),
            "reminders": st.just([{"before": "1h"}]),
        },
    )
    return st.fixed_dictionaries(
        {"schedule": valid_schedule(), "taskTemplate": template},
        optional={
            "anchor": st.sampled_from(["schedule", "completion"]),
            "suspend": st.booleans(),
            "historyLimit": st.integers(0, 100),
        },
    )


def valid_reminder_spec() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"taskRef": st.fixed_dictionaries({"name": st.sampled_from(["plants", "rent"])})},
        optional={
            "to": st.just("bob@example.com"),
            "message": st.just("Don't forget!"),
            "channel": st.just("email"),
        },
    ).map(_with_timing) | st.fixed_dictionaries(
        {"taskRef": st.just({"name": "plants"}), "at": st.just("2026-12-04T08:00:00Z")}
    )


def _with_timing(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "before": "1h"}


# For each field (a path under spec, list items as "[]"), the hostile values that fit its meaning.
def _field_values(kind: str) -> dict[str, st.SearchStrategy[Json]]:
    template = "taskTemplate." if kind == "RecurringTask" else ""
    text_fields = {
        "Task": ["title", "description"],
        "RecurringTask": ["taskTemplate.title", "taskTemplate.description"],
        "Reminder": ["message"],
    }[kind]
    values: dict[str, st.SearchStrategy[Json]] = {field: hostile_text() for field in text_fields}
    if kind in ("Task", "RecurringTask"):
        values[f"{template}owner"] = email()
        values[f"{template}priority"] = st.one_of(
            confusable("high"), st.sampled_from(["High", "urgent ", "critical", ""])
        )
        values[f"{template}tags"] = st.one_of(
            st.lists(
                st.one_of(hostile_text("home"), st.sampled_from(["home", "a/b:c", "-x", "x" * 51])),
                max_size=25,
            ),
            st.just(["home", "home"]),
        )
        shaped = st.one_of(
            st.fixed_dictionaries({"before": st.sampled_from(DURATIONS)}),
            st.fixed_dictionaries({"at": st.sampled_from(INSTANTS)}),
        )
        values[f"{template}reminders"] = st.one_of(
            st.lists(shaped, min_size=1, max_size=2),  # well formed, with absurd durations and instants
            st.lists(
                st.one_of(
                    shaped, st.just({"before": "1h", "at": "2026-12-04T08:00:00Z"}), st.just({}), WRONG_TYPE
                ),
                max_size=12,
            ),
        )
    if kind == "Task":
        values["dueAt"] = st.sampled_from(INSTANTS)
        values["completed"] = st.sampled_from(["true", 1, 0, None, "yes"])
    if kind == "RecurringTask":
        values["schedule.rrule"] = rrule_text()
        values["schedule.every"] = st.one_of(
            confusable("daily"), st.sampled_from(["hourly", "fortnightly", "DAILY", ""])
        )
        values["schedule.interval"] = st.sampled_from(ABSURD_INTEGERS)
        values["schedule.count"] = st.sampled_from(ABSURD_INTEGERS)
        values["schedule.start"] = st.sampled_from(LOCAL_TIMES)
        values["schedule.until"] = st.sampled_from(LOCAL_TIMES)
        values["schedule.exdates"] = st.one_of(
            st.lists(st.sampled_from(LOCAL_TIMES), max_size=5),
            st.integers(360, 400).map(
                lambda size: [f"2026-01-05T09:{minute % 60:02d}:{minute // 60:02d}" for minute in range(size)]
            ),
        )
        values["schedule.rdates"] = values["schedule.exdates"]
        values["schedule.timeZone"] = st.one_of(st.sampled_from(TIME_ZONES), confusable("Europe/Berlin"))
        values["anchor"] = st.sampled_from(["completion ", "none", "Schedule"])
        values["historyLimit"] = st.sampled_from(ABSURD_INTEGERS)
        values["suspend"] = st.sampled_from(["false", 0, None])
    if kind == "Reminder":
        values["taskRef.name"] = resource_name()
        values["before"] = st.sampled_from(DURATIONS)
        values["at"] = st.sampled_from(INSTANTS)
        values["to"] = email()
        values["channel"] = st.sampled_from(["sms", "EMAIL", "", "email\x00"])
    return values


_VALID_SPECS = {
    "Task": valid_task_spec,
    "RecurringTask": valid_recurring_task_spec,
    "Reminder": valid_reminder_spec,
}
FIELD_VALUES = {kind: _field_values(kind) for kind in _VALID_SPECS}


def _set(spec: dict[str, Any], path: str, value: Json) -> None:
    *parents, leaf = path.split(".")
    node = spec
    for parent in parents:
        child = node.get(parent)
        if not isinstance(child, dict):
            child = node[parent] = {}
        node = child
    node[leaf] = value


def _delete(spec: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    node: Any = spec
    for parent in parents:
        node = node.get(parent) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


_OPERATIONS = st.sampled_from(["field", "field", "field", "wrong-type", "delete", "unknown"])
_UNKNOWN_NAMES = st.sampled_from(["dueat", "Title", "status", "x-evil", "__proto__"]) | confusable("title")
_MUTATIONS = st.integers(0, 3)
# Hypothesis favours the simplest value (0) and the bounds: ask for one in the middle.
_ONE_IN_THIRTY = st.integers(0, 30).map(lambda number: number == 17)
_VALID = {kind: make() for kind, make in _VALID_SPECS.items()}
_PATHS = {kind: st.sampled_from(sorted(fields)) for kind, fields in FIELD_VALUES.items()}
_PARENTS = {
    kind: st.sampled_from(["", *sorted({path.rpartition(".")[0] for path in fields if "." in path})])
    for kind, fields in FIELD_VALUES.items()
}


@st.composite
def hostile_manifest(draw: st.DrawFn, kind: str, paths: st.SearchStrategy[str] | None = None) -> Manifest:
    """A manifest of ``kind`` (Task, RecurringTask, Reminder): valid, then mutated up to three times.

    ``paths`` narrows the fields that get hostile values (default: all of the kind's fields).
    """
    spec: Json = copy.deepcopy(draw(_VALID[kind]))
    for _ in range(draw(_MUTATIONS)):
        operation = draw(_OPERATIONS)
        if operation == "unknown":
            path = f"{draw(_PARENTS[kind])}.{draw(_UNKNOWN_NAMES)}".lstrip(".")
            _set(spec, path, draw(WRONG_TYPE))
            continue
        path = draw(_PATHS[kind] if paths is None else paths)
        if operation == "delete":
            _delete(spec, path)
        else:
            _set(spec, path, draw(FIELD_VALUES[kind][path] if operation == "field" else WRONG_TYPE))
    if draw(_ONE_IN_THIRTY):
        spec = draw(WRONG_TYPE)  # now and then the whole spec is not even an object
    return {"apiVersion": resources.API_VERSION, "kind": kind, "metadata": {"name": "hostile"}, "spec": spec}


HOSTILE_MANIFESTS = {kind: hostile_manifest(kind) for kind in _VALID_SPECS}
# Tasks whose only hostile parts are their times: what the reminder arithmetic sees.
HOSTILE_TASK_TIMES = hostile_manifest("Task", st.sampled_from(["dueAt", "reminders"]))


# --- schedules as the recurrence engine receives them -----------------------------------------------


_NEAR_NOW = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)).map(
    lambda moment: moment.replace(second=0, microsecond=0)
)
_OFFSETS = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))
_EDGES = st.sampled_from(
    [
        datetime(1, 1, 1),
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=14))),
        datetime(1899, 12, 31, 23, 59),
        datetime(1900, 1, 1),
        datetime(2026, 3, 29, 2, 30),  # in Europe/Berlin's spring-forward gap
        datetime(2026, 10, 25, 2, 30),  # twice in Europe/Berlin
        datetime(2026, 10, 25, 2, 30, fold=1),
        datetime(2024, 2, 29, 9),
        datetime(2999, 12, 31, 23, 59, 59, 999_999),
        datetime(3000, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime(9999, 12, 31, tzinfo=UTC),
    ]
)
_ANYWHEN = st.tuples(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), allow_imaginary=True
    ),
    st.none() | _OFFSETS,
).map(lambda pair: pair[0].replace(tzinfo=pair[1]))
# Mostly plausible (our decade, wall clock or with an offset), else the edges of the calendar.
EDGE_DATETIMES = st.one_of(
    _NEAR_NOW,
    _NEAR_NOW,
    st.tuples(_NEAR_NOW, _OFFSETS).map(lambda pair: pair[0].replace(tzinfo=pair[1])),
    _EDGES,
    _ANYWHEN,
)
_ZONES = st.one_of(st.sampled_from(zones.known_time_zones()), st.sampled_from(TIME_ZONES))


@st.composite
def schedule_spec(draw: st.DrawFn) -> recurrence.ScheduleSpec:
    """``ScheduleSpec`` as the operator builds it from a resource, with every field hostile or plausible.

    Mostly one of the two forms (rrule, or every + interval), as the CRD lets through; sometimes
    both or neither, as only a caller of the engine itself could write.
    """
    form = draw(st.sampled_from(["rrule", "every"] * 4 + ["both", "neither"]))
    rrule = draw(rrule_text()) if form in ("rrule", "both") else None
    every = (
        draw(st.sampled_from(["daily", "weekly", "monthly", "yearly"] * 2 + ["hourly", ""]))
        if form in ("every", "both")
        else None
    )
    interval = 1
    if draw(st.integers(0, 7).map(lambda number: number == 3)):
        interval = draw(st.sampled_from(ABSURD_INTEGERS))
    elif form == "every":
        interval = draw(st.integers(1, 12))
    return recurrence.ScheduleSpec(
        rrule=rrule,
        every=every,  # hostile on purpose: "hourly", ""
        interval=interval,
        start=draw(EDGE_DATETIMES),
        time_zone=draw(_ZONES),
        until=draw(st.none() | EDGE_DATETIMES),
        count=draw(st.none() | st.integers(1, 30) | st.sampled_from(ABSURD_INTEGERS)),
        exdates=tuple(draw(st.lists(EDGE_DATETIMES, max_size=3))),
        rdates=tuple(draw(st.lists(EDGE_DATETIMES, max_size=3))),
    )
