"""Every chart value docs/INSTALL.md, docs/OPERATIONS.md and docs/DEPLOYMENT.md name exists in values.yaml.

A value is named as `--set a.b=...` or in backquotes (`a.b`, `a.b=false`, `a.b: [...]`)
with a first part that is a top-level key of values.yaml; a misspelt or renamed one fails.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests import ROOT

VALUES = yaml.safe_load((ROOT / "manifests" / "helm" / "todo-operator" / "values.yaml").read_text())
DOCS = ("INSTALL.md", "OPERATIONS.md", "DEPLOYMENT.md")
_NAMED = re.compile(r"(?:--set(?:-json)?[ =]'?|`)([a-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+)(?=[`=:\s'])")


def named_values(text: str) -> set[str]:
    return {path for path in _NAMED.findall(text) if path.split(".")[0] in VALUES}


def exists(path: str) -> bool:
    node: Any = VALUES
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("doc", DOCS)
def test_every_value_a_doc_names_is_in_values_yaml(doc: str) -> None:
    named = named_values((ROOT / "docs" / doc).read_text())
    assert named, f"docs/{doc} names no chart value: the pattern no longer finds them"
    assert sorted(path for path in named if not exists(path)) == []


def test_a_misspelt_value_is_caught() -> None:
    named = named_values("set `dapr.enable=false`, or `--set operator.peering.enabled=true`")
    assert named == {"dapr.enable", "operator.peering.enabled"}
    assert [path for path in sorted(named) if not exists(path)] == ["dapr.enable"]
