"""What each of our three distributions ships and what it may import.

The product (``todo-operator``, the wheel and the image) holds ``todo_operator``
alone. The API emulator (``packages/kube-emulator``) and the local stack
(``packages/todo-devstack``: the demo and the doubles the tests share) are
distributions of their own, which the product never imports (lint-imports
holds that); here: every distribution a module imports is one its
``pyproject.toml`` declares, and the built wheel holds no emulator.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator

import pytest

from tests import ROOT
from todo_operator import cli

# distribution folder -> the import package it holds
DISTRIBUTIONS = {
    ROOT: "todo_operator",
    ROOT / "packages" / "kube-emulator": "kube_emulator",
    ROOT / "packages" / "todo-devstack": "todo_devstack",
}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(folder: pathlib.Path) -> set[str]:
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    return {
        _normalized(re.split(r"[\s\[=<>!~;]", requirement, maxsplit=1)[0])
        for requirement in project["dependencies"]
    }


def _imported_top_level(package: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield from ((alias.name.split(".")[0], path) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module.split(".")[0], path


@pytest.mark.parametrize("folder", list(DISTRIBUTIONS), ids=DISTRIBUTIONS.get)
def test_every_imported_distribution_is_declared(folder: pathlib.Path) -> None:
    providers = importlib.metadata.packages_distributions()
    itself = _normalized(tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"])
    declared = _declared(folder) | {itself}
    undeclared = sorted(
        f"{module} ({path.relative_to(ROOT)}) comes from {', '.join(providers.get(module, ['nothing']))}"
        for module, path in set(_imported_top_level(folder / DISTRIBUTIONS[folder]))
        if module not in sys.stdlib_module_names
        and module != "__future__"
        and not declared & {_normalized(distribution) for distribution in providers.get(module, [])}
    )
    assert undeclared == [], f"{folder.name}/pyproject.toml does not declare what these import"


def test_the_wheel_holds_the_product_and_no_emulator(tmp_path: pathlib.Path) -> None:
    # Built from a copy of what the image's build context holds (.dockerignore): setuptools
    # writes build/ and *.egg-info beside the sources it builds.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "todo_operator", source / "todo_operator", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), source],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("todo_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_levels = {name.split("/")[0] for name in archive.namelist()}
        names = archive.namelist()
    assert {folder for folder in top_levels if not folder.endswith(".dist-info")} == {"todo_operator"}
    assert [name for name in names if re.search(r"emulator|devstack|kmock", name)] == []
    assert any(name.startswith("todo_operator/store/migrations/") for name in names)  # package data
    # The web page's templates and assets: every one the source tree has (a page without them is a 500).
    web = ROOT / "todo_operator" / "api" / "web"
    shipped = {f"todo_operator/api/web/{path.relative_to(web)}" for path in web.glob("[st]*/*.*")}
    assert shipped, "no templates or assets found in the source tree"
    assert shipped <= set(names), shipped - set(names)


def test_demo_is_refused_with_where_it_comes_from_when_the_local_stack_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in the image: the product without packages/todo-devstack, so no entry point provides `demo`.
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: importlib.metadata.EntryPoints(()))
    assert cli.main(["demo", "--keep"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("todo-operator demo: this installation has no 'demo' command")
    assert "todo-devstack" in error
    assert "Traceback" not in error


def test_demo_comes_from_the_local_stack_by_entry_point() -> None:
    (found,) = importlib.metadata.entry_points(group=cli.PLUGIN_GROUP, name="demo")
    assert found.dist is not None
    assert found.dist.name == "todo-devstack"
    parser = argparse.ArgumentParser()
    found.load().configure(parser)
    assert parser.parse_args(["--keep"]).keep is True


def test_the_license_file_is_the_license_pyproject_names() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "Apache-2.0"
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text, "the whole text, not a pointer to it"
