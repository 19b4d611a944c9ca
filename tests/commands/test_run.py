"""``todo-operator run`` refuses bad settings and an old schema with one readable line."""

from __future__ import annotations

import pytest

from todo_operator.cli import main


def test_run_without_a_database_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TODO_DATABASE_URL", raising=False)
    assert main(["run"]) == 2
    assert capsys.readouterr().err.strip() == "todo-operator run: TODO_DATABASE_URL: Field required"


def test_run_on_an_unmigrated_database(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TODO_DATABASE_URL", empty_database_url)
    assert main(["run"]) == 2
    assert capsys.readouterr().err.strip() == (
        "todo-operator run: the database schema is not up to date"
        " (missing 0001.initial-schema, 0002.events, 0003.reminder-delivery, 0004.api-search,"
        " 0005.reminder-dead-letters, 0006.reminder-failure-reason, 0007.web-sessions,"
        " 0008.wakeups):"
        " run `todo-operator migrate up`"
    )


def test_run_with_an_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TODO_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["run"]) == 2
    assert capsys.readouterr().err.startswith("todo-operator run: cannot reach the database")
