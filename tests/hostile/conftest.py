"""Fixtures of the hostile-input tests, and the end-of-run count of generated cases (see ``tally``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from _pytest.terminal import TerminalReporter

from tests.hostile import tally


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for thousands of in-process reconciles (a new loop each costs more than the check)."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not tally.counts:
        return
    terminalreporter.write_sep("-", "generated hostile cases")
    for source, cases in sorted(tally.counts.items()):
        terminalreporter.write_line(f"{source:40} {cases:>8,}")
    state = "all sources ran" if tally.complete() else "not every source ran: the target does not apply"
    terminalreporter.write_line(f"{'total':40} {tally.total():>8,}  (target {tally.TARGET:,}; {state})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A run that had every generating test pass, but generated too few cases, has not tested enough.
    if exitstatus == pytest.ExitCode.OK and tally.complete() and tally.total() < tally.TARGET:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"FAILED: {tally.total():,} generated hostile cases, fewer than {tally.TARGET:,} "
                "(tests/hostile/tally.py)",
                red=True,
            )
