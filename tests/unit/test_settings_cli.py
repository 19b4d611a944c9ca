"""Bad TODO_* settings of the new knobs: one readable line, exit code 2, nothing started."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

CLI = pathlib.Path(sys.executable).with_name("todo-operator")


@pytest.mark.parametrize(
    ("command", "variable", "value", "said"),
    [
        (
            "run",
            "TODO_TRACE_SAMPLE_RATIO",
            "2",
            "TODO_TRACE_SAMPLE_RATIO: Input should be less than or equal to 1",
        ),
        ("run", "TODO_WORKER_LIMIT", "0", "TODO_WORKER_LIMIT: Input should be greater than or equal to 1"),
        (
            "run",
            "TODO_METRICS_PORT",
            "70000",
            "TODO_METRICS_PORT: Input should be less than or equal to 65535",
        ),
        ("relay", "TODO_LOG_FORMAT", "xml", "TODO_LOG_FORMAT: Input should be 'json' or 'text'"),
    ],
)
def test_a_bad_telemetry_or_worker_setting_is_refused_in_one_line(
    command: str, variable: str, value: str, said: str
) -> None:
    environment = {**os.environ, "TODO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", variable: value}
    result = subprocess.run([str(CLI), command], env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    "launcher",
    [[str(CLI)], [sys.executable, "-m", "todo_operator"], [sys.executable, "-m", "todo_operator.cli"]],
    ids=["script", "python -m todo_operator", "python -m todo_operator.cli"],
)
def test_every_way_to_start_the_command_refuses_a_missing_setting_in_one_line(launcher: list[str]) -> None:
    # Run as ``-m todo_operator.cli`` the module is loaded twice (as __main__ too): the
    # commands' UsageError must still be the one caught, not a traceback.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TODO_")}
    result = subprocess.run([*launcher, "run"], env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "todo-operator run: TODO_DATABASE_URL: Field required"


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        ({"TODO_API_JWT_SECRET": "x" * 40}, "TODO_DATABASE_URL: Field required"),
        (
            {"TODO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "TODO_API_JWT_SECRET": "x" * 31},
            "TODO_API_JWT_SECRET: Value error, an HS256 secret must be at least 32 bytes"
            " (RFC 7518, section 3.2)",
        ),
        (
            {"TODO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "set exactly one of TODO_API_JWT_SECRET or TODO_API_JWKS_URL",
        ),
    ],
    ids=["no-database", "short-hs256-secret", "no-key"],
)
def test_the_api_names_bad_settings_as_they_are_set(variables: dict[str, str], said: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TODO_")} | variables
    result = subprocess.run([str(CLI), "api"], env=environment, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr.strip()) == (2, f"todo-operator api: {said}")
