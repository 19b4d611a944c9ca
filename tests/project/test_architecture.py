"""The layers as docs/ARCHITECTURE.md draws them are the layers lint-imports enforces.

And nothing escapes them: every module of the product sits in a layer, and no
product function is longer than ``MAX_LINES`` unless ARCHITECTURE.md lists it
with its reason.
"""

from __future__ import annotations

import ast
import pathlib
import re
import tomllib

from tests import ROOT

ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
MAX_LINES = 60


def _contract_layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [
        {name.strip().removeprefix("todo_operator.") for name in layer.split("|")}
        for layer in contract["layers"]
    ]


def _block_after(marker: str) -> list[str]:
    text = ARCHITECTURE.read_text()
    after = text[text.index(marker) :].split("\n", 1)[1]
    return after.split("\n\n", 1)[0].splitlines()


def test_architecture_md_draws_the_layers_the_contract_enforces() -> None:
    lines = [line for line in _block_after("<!-- layers:") if not line.startswith("```")]
    drawn = [{name.strip() for name in line.split("|")} for line in lines]
    assert drawn == _contract_layers()


def test_every_module_of_the_product_is_in_a_layer() -> None:
    placed = set().union(*_contract_layers())
    top_level = {
        path.stem if path.is_file() else path.name
        for path in (ROOT / "todo_operator").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert top_level - placed == set(), "a module outside every layer escapes the contract"


def _long_functions() -> dict[str, int]:
    found = {}
    for path in sorted((ROOT / "todo_operator").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT / "todo_operator").with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES:
                    found[f"{module}:{node.name}"] = length
    return found


def _listed_exceptions() -> set[str]:
    return {
        match.group(1)
        for line in _block_after("<!-- longer functions:")
        if (match := re.match(r"- `([\w.]+:\w+)` — \S", line))
    }


def test_no_product_function_is_longer_than_the_limit_unless_listed_with_its_reason() -> None:
    long_functions = _long_functions()
    listed = _listed_exceptions()
    assert set(long_functions) - listed == set(), f"over {MAX_LINES} lines: {long_functions}"
    assert listed - set(long_functions) == set(), "listed as long in ARCHITECTURE.md, but no longer so"


# Store classes that hold a connection of their own on purpose, and why.
NOT_REPOSITORIES = {
    "wakeups.Listener": "a LISTEN connection stays with its listener, outside any pool; it reads no table",
}


def _store_shapes() -> tuple[list[str], list[str]]:
    """(module-level public async functions, classes with async methods not built on Repository)."""
    loose: list[str] = []
    off_shape: list[str] = []
    for path in sorted((ROOT / "todo_operator" / "store").glob("*.py")):
        if path.name == "repository.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.AsyncFunctionDef) and not node.name.startswith("_"):
                loose.append(f"{path.stem}.{node.name}")
            if isinstance(node, ast.ClassDef):
                bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
                has_io = any(isinstance(item, ast.AsyncFunctionDef) for item in node.body)
                if (
                    has_io
                    and "Repository" not in bases
                    and f"{path.stem}.{node.name}" not in NOT_REPOSITORIES
                ):
                    off_shape.append(f"{path.stem}.{node.name}")
    return loose, off_shape


def test_the_store_reads_and_writes_through_repositories_of_one_shape() -> None:
    """store/repository.py: a repository is a class over a pool or the caller's connection;
    no query hides in a loose function or a class of another shape."""
    assert _store_shapes() == ([], [])


# Top-level test folders that are not a part of the product, and what they hold instead.
NOT_MIRRORED = {
    "packages": "our other distributions (packages/*), one folder each",
    "manifests": "what we ship around the code: the chart, kustomize, Terraform, CI, images",
    "observability": "dashboards, recording and alerting rules (observability/)",
    "faults": "docs/RELIABILITY.md's faults, injected into the whole running stack",
    "hostile": "generated attacker input against every edge",
    "project": "the repository as a whole: the layers, the distributions, the README",
    "oracle": "an RFC 5545 engine no one here wrote (Node.js) that the recurrence engine is checked against",
}


def _unmirrored_test_folders() -> list[str]:
    tests = ROOT / "tests"
    strays = []
    for folder in sorted(path for path in tests.rglob("*") if path.is_dir() and path.name != "__pycache__"):
        parts = folder.relative_to(tests).parts
        if parts[0] == "packages":
            mirrored = len(parts) == 1 or any((ROOT / "packages").glob(f"*/{'/'.join(parts[1:])}"))
        elif parts[0] in NOT_MIRRORED:
            mirrored = True
        else:
            product = ROOT / "todo_operator" / pathlib.Path(*parts)
            mirrored = product.is_dir() or product.with_suffix(".py").is_file()
        if not mirrored:
            strays.append("/".join(parts))
    return strays


def test_the_tests_mirror_the_source_tree() -> None:
    """tests/<x>/ holds the tests of todo_operator/<x> (a package or a module); the folders
    that are not a part of the product are named above with what they hold."""
    assert _unmirrored_test_folders() == []


def test_every_test_file_the_docs_name_exists() -> None:
    named = {
        match
        for path in [
            ROOT / "README.md",
            *(ROOT / "docs").glob("*.md"),
            *(ROOT / "todo_operator").rglob("*.py"),
        ]
        for match in re.findall(r"tests/[\w/]+\.py", path.read_text())
    }
    assert named, "the docs name the tests that hold what they say"
    assert sorted(name for name in named if not (ROOT / name).is_file()) == []
