"""How many generated hostile cases one run of the suite tried, by source.

Issue #10 asks for at least 10,000 per run, across resources and the REST
API. Each generating test records what it ran; ``tests/hostile/conftest.py``
prints the table at the end of the run and fails the run when every source
ran and the total still falls short.
"""

from __future__ import annotations

import collections

TARGET = 10_000
# Source name prefixes that together make up a full run (a partial run is not held to the target).
SOURCES = ("schema/", "schedule/", "operator/", "schemathesis/", "channel/", "http/")

counts: collections.Counter[str] = collections.Counter()


def record(source: str, cases: int) -> None:
    """Add ``cases`` generated cases to ``source`` (e.g. ``schema/Task``)."""
    if not source.startswith(SOURCES):
        raise ValueError(f"{source!r} does not start with one of {SOURCES}")
    counts[source] += cases


def total() -> int:
    return sum(counts.values())


def complete() -> bool:
    """Whether every source recorded something (the whole suite, or at least all generating tests, ran)."""
    return all(any(source.startswith(prefix) for source in counts) for prefix in SOURCES)
