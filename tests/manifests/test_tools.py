"""Offline linters over the image, the workflows, the scripts and Terraform — each with a negative control."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from tests.manifests import checks, rendering

ROOT = rendering.ROOT
BIN = ROOT / ".venv" / "bin"
SCRIPTS = [ROOT / "scripts" / "deploy-minikube.sh"]
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
