#!/usr/bin/env python3
"""Print (or write into docs/DEPLOYMENT.md) the table of the chart's values from their `# --` comments.

Each documented value in values.yaml is a `# -- description` line directly
above `key: default`; its full path comes from the indentation. Run with
`--write` to refresh the table between the markers in docs/DEPLOYMENT.md;
tests/manifests checks that the committed table is current.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
VALUES = ROOT / "manifests" / "helm" / "todo-operator" / "values.yaml"
DOC = ROOT / "docs" / "DEPLOYMENT.md"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")


def rows(text: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    path: list[tuple[int, str]] = []
    description: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# -- "):
            description = stripped[len("# -- ") :]
            continue
        if stripped.startswith("#") and description is not None:
            description += " " + stripped.lstrip("# ")
            continue
        match = _KEY.match(line)
        if match is None:
            description = None
            continue
        indent = len(match["indent"])
        while path and path[-1][0] >= indent:
            path.pop()
        path.append((indent, match["key"]))
        if description is not None:
            default = match["rest"].strip() or "(a map: see below)"
            found.append((".".join(key for _, key in path), default, description))
        description = None
    return found


def table(text: str) -> str:
    lines = ["| value | default | what it does |", "|---|---|---|"]
    for key, default, description in rows(text):
        lines.append(f"| `{key}` | `{default.replace('|', '\\|')}` | {description.replace('|', '\\|')} |")
    return "\n".join(lines)


def document(doc: str, values: str) -> str:
    before, _, rest = doc.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{table(values)}\n{END}{after}"


if __name__ == "__main__":
    rendered = document(DOC.read_text(), VALUES.read_text())
    if "--write" in sys.argv:
        DOC.write_text(rendered)
    else:
        print(table(VALUES.read_text()))
