"""Offline linters over the image, the workflows, the scripts and Terraform — each with a negative control."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from tests.manifests import checks, rendering

ROOT = rendering.ROOT
BIN = ROOT / ".venv" / "bin"
SCRIPTS = [
    ROOT / "scripts" / "deploy-minikube.sh",
    ROOT / "scripts" / "release-version.sh",
    ROOT / "scripts" / "build-kubectl-plugin.sh",
]
TERRAFORM = shutil.which("terraform")


def _run(*arguments: str | pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in arguments], capture_output=True, text=True, check=False, timeout=120
    )


def _tool(name: str) -> pathlib.Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in .venv (a dev dependency: make venv installs it)")
    return path


def test_dockerfile_passes_hadolint() -> None:
    completed = _run(_tool("hadolint"), ROOT / "Dockerfile")
    assert completed.returncode == 0, completed.stdout


def test_hadolint_flags_a_bad_dockerfile(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    assert _run(_tool("hadolint"), bad).returncode != 0


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "no USER"
    assert users[-1].split(":")[0].isdigit()
    assert users[-1].split(":")[0] != "0"
    assert 'ENTRYPOINT ["todo-operator"]' in lines


@pytest.mark.parametrize("name", ["Dockerfile", "terraform"])
def test_checkov_finds_nothing_unexplained(
    name: str, checkov_failures: dict[str, list[rendering.Json]]
) -> None:
    assert not checks.unskipped(checkov_failures[name], checks.load_checkov_skips())


def test_checkov_flags_a_bad_pod(checkov_failures: dict[str, list[rendering.Json]]) -> None:
    flagged = checks.unskipped(checkov_failures["negative control"], checks.load_checkov_skips())
    assert any("CKV_K8S_16" in problem for problem in flagged)  # privileged container


def test_workflows_match_the_github_schema() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} >= {"ci.yml", "deploy-production.yml", "deploy-staging.yml"}
    completed = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows)
    assert completed.returncode == 0, completed.stdout


def test_workflow_schema_check_flags_a_bad_workflow(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    completed = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", bad)
    assert completed.returncode != 0


def test_deploy_workflows_use_secrets_concurrency_and_atomic() -> None:
    for name in ("deploy-production.yml", "deploy-staging.yml"):
        text = (ROOT / ".github" / "workflows" / name).read_text()
        assert "concurrency:" in text
        assert "permissions:" in text
        assert "--atomic" in text
        assert "helm test" in text
        assert "${{ secrets." in text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script: pathlib.Path) -> None:
    assert _run("bash", "-n", script).returncode == 0
    completed = _run(_tool("shellcheck"), script)
    assert completed.returncode == 0, completed.stdout
    text = script.read_text()
    assert "set -euo pipefail" in text


def test_shellcheck_flags_a_bad_script(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\nrm -rf $1/*\n")
    assert _run(_tool("shellcheck"), bad).returncode != 0


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
def test_terraform_is_formatted() -> None:
    completed = _run(str(TERRAFORM), "fmt", "-check", "-recursive", "-diff", ROOT / "terraform")
    assert completed.returncode == 0, completed.stdout


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
def test_terraform_fmt_flags_unformatted_code(tmp_path: pathlib.Path) -> None:
    (tmp_path / "main.tf").write_text('variable "x" {\ntype=string\n}\n')
    assert _run(str(TERRAFORM), "fmt", "-check", tmp_path).returncode != 0


def test_the_release_workflow_versions_everything_from_the_tag_alone() -> None:
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert release[True] == {"push": {"tags": ["v*"]}}, "a tag, and nothing else, makes a release"
    steps = release["jobs"]["release"]["steps"]
    runs = [step.get("run", "") for step in steps]
    first_build = next(i for i, step in enumerate(steps) if "build-push-action" in step.get("uses", ""))
    assert any("scripts/release-version.sh" in run for run in runs[:first_build]), "checked before building"
    build = steps[first_build]["with"]
    assert (build["sbom"], build["provenance"], build["push"]) == (True, "mode=max", True)
    assert build["tags"].endswith(":${{ steps.version.outputs.version }}")
    chart = next(run for run in runs if "helm package" in run)
    assert '--version "$VERSION" --app-version "$VERSION"' in chart
    assert 'helm push "dist/todo-operator-$VERSION.tgz" "$CHARTS"' in chart
    assert release["env"]["CHARTS"].startswith("oci://")


def _release_version(root: pathlib.Path, tag: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "scripts" / "release-version.sh"), tag],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_release_tag_must_agree_with_pyproject_and_the_changelog(tmp_path: pathlib.Path) -> None:
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "release-version.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    (tmp_path / "CHANGELOG.md").write_text(
        changelog.replace("## [Unreleased]", "## [Unreleased]\n\n## [9.9.9]")
    )

    refused = _release_version(tmp_path, f"v{version[1]}")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert f"CHANGELOG.md has no section '## [{version[1]}] - YYYY-MM-DD'" in refused.stderr
    assert "pyproject.toml says" in _release_version(tmp_path, "v9.9.9").stderr
    assert "is not vX.Y.Z" in _release_version(tmp_path, version[1]).stderr

    released = changelog.replace("## [Unreleased]", f"## [{version[1]}] - 2026-12-03")
    (tmp_path / "CHANGELOG.md").write_text(released)
    accepted = _release_version(tmp_path, f"v{version[1]}")
    assert (accepted.returncode, accepted.stdout) == (0, f"{version[1]}\n")
