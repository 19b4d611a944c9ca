"""docs/MONITORING.md's metric catalogue lists exactly the metrics the code exports."""

from __future__ import annotations

import re

from prometheus_client.registry import CollectorRegistry

from tests.observability import checks

# The collectors every process has; the catalogue gives them one row together.
_DEFAULT_COLLECTORS = ("process_", "python_")


def catalogue_rows(markdown: str) -> set[str]:
    """The metric names in the first column of the "Metric catalogue" table."""
    section = markdown.split("## Metric catalogue", 1)[1].split("\n## ", 1)[0]
    return {
        match[1]
        for line in section.splitlines()
        if (match := re.match(r"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|", line))
    }


def queried_names(registry: CollectorRegistry) -> set[str]:
    """Our metrics as people query them: counters with _total, the rest by family name."""
    names = set()
    for family in registry.collect():
        if family.name.startswith(_DEFAULT_COLLECTORS):
            continue
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def test_the_catalogue_lists_exactly_the_exported_metrics(registry: CollectorRegistry) -> None:
    documented = catalogue_rows(checks.MONITORING.read_text())
    exported = queried_names(registry)
    assert sorted(exported - documented) == [], "exported but not in docs/MONITORING.md's catalogue"
    assert sorted(documented - exported) == [], "in the catalogue but not exported"


def test_the_catalogue_reader_finds_rows_and_misses() -> None:
    text = (
        "## Metric catalogue\n| metric | type |\n|---|---|\n| `todo_a_total` | counter |\n"
        "| `process_*`, `python_*` | |\n## Next\n| `todo_elsewhere` | gauge |\n"
    )
    assert catalogue_rows(text) == {"todo_a_total"}
