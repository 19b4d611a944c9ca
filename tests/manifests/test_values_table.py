"""docs/DEPLOYMENT.md's table of values is generated from values.yaml and covers every value."""

from __future__ import annotations

import importlib.util
from typing import Any

import yaml

from tests import ROOT

_spec = importlib.util.spec_from_file_location("values_table", ROOT / "scripts" / "values-table.py")
assert _spec is not None
assert _spec.loader is not None
values_table: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(values_table)


def _leaves(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict) and node:
        found: set[str] = set()
        for key, value in node.items():
            found |= _leaves(value, f"{prefix}.{key}" if prefix else key)
        return found
    return {prefix}


def test_the_committed_table_is_current() -> None:
    doc = values_table.DOC.read_text()
    assert doc == values_table.document(doc, values_table.VALUES.read_text()), (
        "docs/DEPLOYMENT.md's values table is stale: run python scripts/values-table.py --write"
    )


def test_every_value_is_documented() -> None:
    text = values_table.VALUES.read_text()
    documented = {key for key, _, _ in values_table.rows(text)}
    undocumented = {
        leaf
        for leaf in _leaves(yaml.safe_load(text))
        if not any(leaf == key or leaf.startswith(f"{key}.") for key in documented)
    }
    assert not undocumented, f"values without a '# --' comment: {sorted(undocumented)}"
