"""``todo-operator preview``: through the dispatcher, as a real process, and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from todo_operator import cli

EXECUTABLE = Path(sys.executable).with_name("todo-operator")


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["preview", "--rrule", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "--start", "2026-03-28T09:00",
         "--time-zone", "Europe/Berlin", "--limit", "2"]
    )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-03-29T03:30:00+02:00  Sun 29 Mar 2026 03:30 CEST",
        "2026-03-30T02:30:00+02:00  Mon 30 Mar 2026 02:30 CEST",
    ]


def test_json_output_with_after_and_exdate(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["preview", "--rrule", "FREQ=MONTHLY;BYDAY=-1FR", "--start", "2026-01-30T17:00",
         "--time-zone", "Europe/Berlin", "--limit", "3", "--after", "2026-06-01T00:00Z",
         "--exdate", "2026-07-31T17:00", "--output", "json"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == [
        "2026-06-26T17:00:00+02:00",
        "2026-08-28T17:00:00+02:00",
        "2026-09-25T17:00:00+02:00",
    ]


def test_every_with_count(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["preview", "--every", "weekly", "--interval", "2", "--start", "2026-01-05T09:00",
         "--time-zone", "America/New_York", "--count", "2", "--output", "json"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == ["2026-01-05T09:00:00-05:00", "2026-01-19T09:00:00-05:00"]


def test_without_the_operators_limits_a_refused_rule_is_shown_with_a_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    arguments = ["preview", "--rrule", "FREQ=MINUTELY;INTERVAL=2;BYHOUR=9", "--start", "2026-12-07T09:00",
                 "--limit", "3", "--output", "json"]  # fmt: skip
    assert cli.main(arguments) == 2  # the operator's limits: refused
    assert "at least 5 minutes apart" in capsys.readouterr().err
    assert cli.main([*arguments, "--limits", "none"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [
        "2026-12-07T09:00:00+00:00",
        "2026-12-07T09:02:00+00:00",
        "2026-12-07T09:04:00+00:00",
    ]
    assert captured.err == (
        "note: the operator would refuse this schedule: occurrences must be at least 5 minutes apart;"
        " FREQ=MINUTELY without BYMINUTE has them 2 minutes apart in every hour it matches\n"
    )


def test_without_the_operators_limits_a_schedule_it_accepts_has_no_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["preview", "--every", "daily", "--start", "2026-12-07T09:00", "--limits", "none"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",  # never matches: no limit makes it mean something
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;COUNT=10000",  # the compile's work budget still holds
    ],
)
def test_without_the_operators_limits_the_engines_own_bounds_hold(
    rule: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["preview", "--rrule", rule, "--start", "2026-01-05T09:00", "--limits", "none"]) == 2
    assert capsys.readouterr().err.startswith("todo-operator preview: ")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--rrule", "FREQ=MONTHLY;BYMONTHDAY=40"], "BYMONTHDAY must be between -31 and 31, got 40"),
        (["--rrule", "FREQ=DAILY", "--time-zone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--rrule", "FREQ=DAILY", "--time-zone", "europe/london"], "did you mean 'Europe/London'?"),
        (["--rrule", "FREQ=DAILY", "--after", "yesterday"], "--after must be a date and time"),
        (["--rrule", "FREQ=DAILY", "--limit", "0"], "--limit must be at least 1"),
        (["--rrule", "FREQ=MINUTELY"], "at least 5 minutes apart"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["preview", "--start", "2026-01-05T09:00", *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("todo-operator preview: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1


def test_as_a_real_process() -> None:
    result = subprocess.run(
        [str(EXECUTABLE), "preview", "--every", "daily", "--start", "2026-01-05T09:00", "--limit", "2",
         "--output", "json"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == ["2026-01-05T09:00:00+00:00", "2026-01-06T09:00:00+00:00"]
    bad = subprocess.run(
        [str(EXECUTABLE), "preview", "--rrule", "FREQ=SECONDLY", "--start", "2026-01-05T09:00"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 1


def test_preview_imports_no_operator_machinery() -> None:
    probe = (
        "import sys\n"
        "from todo_operator import cli\n"
        "cli.main(['preview', '--every', 'daily', '--start', '2026-01-05T09:00', '--limit', '1'])\n"
        "loaded = {name.split('.')[0] for name in sys.modules}\n"
        "heavy = sorted(loaded & {'kopf', 'aiohttp', 'psycopg', 'pydantic'})\n"
        "print(','.join(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stderr.strip() == ""


def test_rdates_join_the_rules_occurrences(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["preview", "--rrule", "FREQ=WEEKLY;BYDAY=MO", "--start", "2026-12-07T09:00", "--time-zone",
         "Europe/Berlin", "--rdate", "2026-12-10T18:00", "--limit", "3", "--output", "json"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == [
        "2026-12-07T09:00:00+01:00",
        "2026-12-10T18:00:00+01:00",
        "2026-12-14T09:00:00+01:00",
    ]
