"""Bad TODO_* settings of the new knobs: one readable line, exit code 2, nothing started."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from todo_operator import settings_registry

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


# Arguments that get each command past argparse, so that only the settings can stop it.
ARGUMENTS = {
    "run": [],
    "notify": ["--reminder", "default/example"],
    "relay": [],
    "api": [],
    "migrate": ["up"],
    "demo": ["--port-base", "28080"],
}


def _without_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("TODO_")}


@pytest.mark.parametrize("command", list(settings_registry.READERS))
def test_every_command_that_reads_settings_refuses_an_unknown_one(
    command: str, tmp_path: pathlib.Path
) -> None:
    # TODO_SMTP_SENDER is what docs/DEPLOYMENT.md told users to set before issue #16.
    environment = _without_settings() | {
        "TODO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "TODO_SMTP_SENDER": "todo@example.com",
    }
    result = subprocess.run(
        [str(CLI), command, *ARGUMENTS[command]],
        env=environment,
        cwd=tmp_path,  # the demo, were it to start, would write its state here
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"todo-operator {command}: unknown setting TODO_SMTP_SENDER (did you mean TODO_SMTP_FROM?)",
    )


@pytest.mark.parametrize(
    "arguments", [["crds"], ["preview", "--every", "daily", "--start", "2026-01-05T09:00"]]
)
def test_commands_that_read_no_settings_do_not_look_at_them(arguments: list[str]) -> None:
    environment = _without_settings() | {"TODO_SMTP_SENDER": "todo@example.com"}
    result = subprocess.run(
        [str(CLI), *arguments], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_test_harness_variable_is_accepted() -> None:
    environment = _without_settings() | {"TODO_E2E_KUBECONFIG": "/nonexistent/kubeconfig"}
    result = subprocess.run(
        [str(CLI), "migrate", "up"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "todo-operator migrate: no database: pass --database-url or set TODO_DATABASE_URL",
    )
