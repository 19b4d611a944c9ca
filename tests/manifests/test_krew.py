"""The krew manifest (``.krew.yaml``), the release job that builds its archives and the build
script: rendered as krew-release-bot renders the template, and held to krew's manifest rules
(krew.sigs.k8s.io, "Writing Krew plugin manifests") and to each other."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import yaml

from tests.manifests import rendering

ROOT = rendering.ROOT
TAG = "v1.2.3"
SHA = "ab" * 32  # not all digits: YAML would read that as a number
_URI_AND_SHA = re.compile(r'\{\{\s*addURIAndSha "([^"]+)" \.TagName\s*\}\}')


def rendered(tag: str = TAG) -> dict[str, Any]:
    """``.krew.yaml`` as krew-release-bot writes it: ``addURIAndSha`` gives ``uri: <url>`` and,
    on the next line at four spaces, ``sha256: <hash of the downloaded archive>``."""
    text = (ROOT / ".krew.yaml").read_text()
    text = _URI_AND_SHA.sub(lambda m: f"uri: {m.group(1)}\n    sha256: {SHA}", text)
    text = re.sub(r"\{\{\s*\.TagName\s*\}\}", tag, text)
    assert "{{" not in text, "a template action krew-release-bot would not know"
    manifest: dict[str, Any] = yaml.safe_load(text)
    return manifest


def release_matrix() -> list[dict[str, str]]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    job = workflow["jobs"]["kubectl-plugin"]
    include: list[dict[str, str]] = job["strategy"]["matrix"]["include"]
    return include


def test_the_manifest_follows_krews_rules() -> None:
    manifest = rendered()
    assert (manifest["apiVersion"], manifest["kind"]) == (
        "krew.googlecontainertools.github.com/v1alpha2",
        "Plugin",
    )
    # The plugin's name is how kubectl runs it: the console script kubectl-<name>.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert f"kubectl-{manifest['metadata']['name']}" in scripts
    spec = manifest["spec"]
    assert spec["version"] == TAG  # krew wants the v prefix
    assert spec["homepage"].startswith("https://")
    assert 0 < len(spec["shortDescription"]) <= 50
    assert spec["description"].strip()
    seen = set()
    for platform in spec["platforms"]:
        labels = platform["selector"]["matchLabels"]
        key = (labels["os"], labels["arch"])
        assert key not in seen, f"{key} twice"
        seen.add(key)
        assert platform["uri"] == (
            f"https://github.com/todo-dev/todo-operator/releases/download/{TAG}/kubectl-todo_{key[0]}_{key[1]}.tar.gz"
        )
        assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
        assert platform["bin"] == "kubectl-todo"
        assert platform["files"] == [{"from": "kubectl-todo/*", "to": "."}]


def test_every_platform_is_built_and_attached_by_the_release() -> None:
    manifest = rendered()
    listed = {
        (p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"])
        for p in manifest["spec"]["platforms"]
    }
    built = {(entry["os"], entry["arch"]) for entry in release_matrix()}
    assert built == listed
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert 'scripts/build-kubectl-plugin.sh "$OS" "$ARCH"' in workflow
    assert 'gh release upload "$GITHUB_REF_NAME" "dist/kubectl-todo_${OS}_${ARCH}.tar.gz"' in workflow
    jobs = yaml.safe_load(workflow)["jobs"]
    assert jobs["kubectl-plugin"]["needs"] == "release"  # the release exists before assets go to it
    assert jobs["krew"]["needs"] == "kubectl-plugin"  # the bot hashes the attached archives


def test_the_build_script_makes_the_archive_the_manifest_unpacks() -> None:
    script = (ROOT / "scripts" / "build-kubectl-plugin.sh").read_text()
    # The archive's top folder is what `files: from: kubectl-todo/*` takes, with the program in it.
    assert 'name="kubectl-todo_${os}_${arch}"' in script
    assert 'tar -czf "$root/dist/$name.tar.gz" -C "$work/dist" kubectl-todo' in script
    assert "--onedir --name kubectl-todo" in script
    assert "from todo_operator.plugin.commands import run" in script
