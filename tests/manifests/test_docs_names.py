"""The Secrets and ConfigMaps the docs tell people about are the ones the chart uses.

REMINDERS.md once named a Secret the chart never read. The docs name objects
as "Secret `x`" and "ConfigMap `x`", and INSTALL.md lists the Secrets to
create before the chart; each is checked against the chart rendered with the
release name the docs use (``todo-operator``, the kustomize base's render).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests import ROOT
from tests.manifests import checks, rendering

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "examples" / "gitops" / "README.md"])
NAMED = re.compile(r"\b(Secret|ConfigMap) `([a-z0-9][-a-z0-9]*)`")
INSTALL_SECRETS = re.compile(r"\*\*The namespace and its Secrets\*\*:(?P<names>[^(]*)\(")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def secrets_used(objects: list[rendering.Json]) -> set[str]:
    """Secrets the rendered pods read: env, envFrom, volumes and image pulls."""
    used: set[str] = set()
    for node in _walk(checks.with_notify_jobs(objects)):
        for key in ("secretKeyRef", "secretRef"):
            if isinstance(node.get(key), dict):
                used.add(node[key]["name"])
        if isinstance(node.get("secret"), dict) and "secretName" in node["secret"]:
            used.add(node["secret"]["secretName"])
    return used


@pytest.fixture(scope="module")
def rendered(chart_results: dict[str, list[rendering.Json] | str]) -> list[rendering.Json]:
    objects = chart_results["kustomize-base"]
    assert not isinstance(objects, str), objects
    return objects


def test_every_secret_and_configmap_a_doc_names_is_the_charts(rendered: list[rendering.Json]) -> None:
    configmaps = {o["metadata"]["name"] for o in rendered if o["kind"] == "ConfigMap"}
    secrets = secrets_used(rendered)
    named = {(doc.name, kind, name) for doc in DOCS for kind, name in NAMED.findall(doc.read_text())}
    assert named, "no doc names a Secret or ConfigMap: the pattern no longer matches the docs"
    missing = sorted(
        (doc, kind, name)
        for doc, kind, name in named
        if name not in (configmaps if kind == "ConfigMap" else secrets)
    )
    assert not missing, f"named in the docs, not in the chart: {missing}"


def test_install_lists_exactly_the_secrets_the_chart_reads(rendered: list[rendering.Json]) -> None:
    found = INSTALL_SECRETS.search((ROOT / "docs" / "INSTALL.md").read_text())
    assert found, "INSTALL.md no longer has its step 'The namespace and its Secrets'"
    listed = set(re.findall(r"`([a-z0-9][-a-z0-9]*)`", found["names"]))
    assert listed == secrets_used(rendered)


def test_a_secret_the_chart_does_not_read_is_caught(rendered: list[rendering.Json]) -> None:
    """The negative control: the check sees a name the chart does not use."""
    assert "todo-operator-notify" not in secrets_used(rendered)
    assert {"todo-database", "todo-smtp"} <= secrets_used(rendered)
