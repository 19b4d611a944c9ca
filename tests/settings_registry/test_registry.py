"""The settings registry: complete, documented, and what users are told to set is what is read.

Issue #16: the docs named ``TODO_SMTP_USE_TLS`` and ``TODO_SMTP_FROM`` while the
code read other names, so the SMTP password went out in clear and nothing said
so. These tests hold every place that names a setting to the registry, which is
built from the settings classes themselves.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
from collections.abc import Iterator

import pytest

from tests import ROOT
from todo_operator import cli, settings_registry
from todo_operator.operator.settings import OperatorSettings, load_settings
from todo_operator.usage import UsageError

SETTINGS_MD = ROOT / "docs" / "SETTINGS.md"
# Where users and operators of the product read setting names. Not tests/ (they name bogus
# ones on purpose), not docs/SETTINGS.md (generated from the registry, checked below) and
# not the registry itself (it lists the former names).
NAMED_IN = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(
        path
        for folder in ("manifests", "scripts", "observability", "examples")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
    ),
    ROOT / "Dockerfile",
    ROOT / "Makefile",
    *sorted((ROOT / "todo_operator").rglob("*.py")),
    *sorted((ROOT / "packages").rglob("*.py")),
]
SKIPPED = {SETTINGS_MD, ROOT / "todo_operator" / "settings_registry.py"}
_NAME = re.compile(r"\bTODO_[A-Z0-9_]*")


def unknown_names(text: str) -> list[str]:
    """``TODO_*`` names in ``text`` that are no setting; ``TODO_SMTP_*`` or ``TODO_API_`` must prefix one."""
    known = settings_registry.known()
    problems = []
    for match in _NAME.finditer(text):
        name = match.group()
        is_prefix = name.endswith("_") or text[match.end() : match.end() + 1] == "*"
        if not (any(setting.startswith(name) for setting in known) if is_prefix else name in known):
            problems.append(name)
    return problems


def _documents() -> Iterator[pathlib.Path]:
    for path in NAMED_IN:
        if path in SKIPPED or "__pycache__" in path.parts or path.suffix in {".png", ".pyc"}:
            continue
        yield path


def test_docs_settings_md_is_the_generated_reference() -> None:
    assert SETTINGS_MD.read_text() == settings_registry.markdown(), (
        "docs/SETTINGS.md is stale: regenerate with"
        " .venv/bin/python -m todo_operator.settings_registry --markdown > docs/SETTINGS.md"
    )


def test_every_name_in_the_docs_chart_and_code_is_a_setting() -> None:
    found = {path.relative_to(ROOT).as_posix(): unknown_names(path.read_text()) for path in _documents()}
    assert {path: names for path, names in found.items() if names} == {}
    assert {"README.md", "docs/SECURITY.md", "scripts/deploy-minikube.sh"} <= set(found)  # not vacuous
    # The notify Secret's keys, as documented for people who create it (chart values, docs).
    for path in (ROOT / "manifests/helm/todo-operator/values.yaml", ROOT / "docs/DEPLOYMENT.md"):
        assert {"TODO_SMTP_FROM", "TODO_SMTP_USE_TLS", "TODO_SMTP_STARTTLS"} <= set(
            _NAME.findall(path.read_text())
        )


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("keys TODO_SMTP_HOST and TODO_SMTP_SENDER", ["TODO_SMTP_SENDER"]),
        ("set `TODO_SMTP_TLS=true`", ["TODO_SMTP_TLS"]),
        ("any of `TODO_SMTP_*`, `TODO_API_*`, `TODO_*`", []),
        ("the `TODO_MAIL_*` settings", ["TODO_MAIL_"]),
    ],
    ids=["former-name", "former-tls-name", "prefixes", "bogus-prefix"],
)
def test_the_docs_check_catches_a_bogus_name(text: str, unknown: list[str]) -> None:
    """Negative control of the test above."""
    assert unknown_names(text) == unknown


def test_every_settings_class_is_in_the_registry() -> None:
    """A new BaseSettings class left out would make every command refuse its variables."""
    declared = set()
    for path in (ROOT / "todo_operator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                (base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)) == "BaseSettings"
                for base in node.bases
            ):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                declared.add(f"{module}.{node.name}")
    registered = {
        f"{cls.__module__}.{cls.__qualname__}"
        for classes in settings_registry.READERS.values()
        for cls in classes
    }
    assert declared == registered


def test_only_crds_and_preview_read_no_settings() -> None:
    # They print what the models and a schedule say: the same in every environment.
    commands = set(cli.COMMANDS) | set(cli.PLUGGED)
    assert set(settings_registry.READERS) <= commands
    assert commands - set(settings_registry.READERS) == {"crds", "preview"}


def test_readers_are_listed_in_the_clis_order() -> None:
    # docs/SETTINGS.md's "read by" column follows it; the registry sits below the CLI and cannot ask it.
    commands = [*cli.COMMANDS, *cli.PLUGGED]
    assert list(settings_registry.READERS) == [name for name in commands if name in settings_registry.READERS]


def test_every_setting_is_described() -> None:
    assert [row.variable for row in settings_registry.settings() if not row.description] == []


def test_former_names_point_at_settings_and_are_no_longer_read() -> None:
    known = settings_registry.known()
    for former, now in settings_registry.RENAMED.items():
        assert now in known
        assert former not in known


@pytest.mark.parametrize(
    ("environ", "problems"),
    [
        (
            {"TODO_SMTP_SENDER": "a@example.com"},
            ["unknown setting TODO_SMTP_SENDER (did you mean TODO_SMTP_FROM?)"],
        ),
        ({"TODO_SMTP_TLS": "true"}, ["unknown setting TODO_SMTP_TLS (did you mean TODO_SMTP_USE_TLS?)"]),
        ({"TODO_WORKER_LIMT": "4"}, ["unknown setting TODO_WORKER_LIMT (did you mean TODO_WORKER_LIMIT?)"]),
        ({"todo_smtp_sender": "x"}, ["unknown setting todo_smtp_sender (did you mean TODO_SMTP_FROM?)"]),
        ({"TODO_NOTHING_LIKE_IT_AT_ALL": "x"}, ["unknown setting TODO_NOTHING_LIKE_IT_AT_ALL"]),
        # The API reads none of the operator's variables, but a shared ConfigMap may hold them.
        ({"TODO_DAPR_ENABLED": "false", "TODO_API_NAMESPACE": "todo", "todo_log_format": "text"}, []),
        ({"TODO_E2E_KUBECONFIG": "/tmp/kubeconfig"}, []),  # the test harness's own variable
        # ... which is never suggested to a user of the product.
        ({"TODO_KUBECONFIG": "x"}, ["unknown setting TODO_KUBECONFIG (did you mean TODO_KUBE_API_URL?)"]),
        ({"PATH": "/bin", "DAPR_HTTP_PORT": "3500", "XTODO_SMTP_SENDER": "x"}, []),  # not ours
    ],
    ids=[
        "renamed-from",
        "renamed-tls",
        "typo",
        "lower-case",
        "no-suggestion",
        "shared",
        "harness",
        "harness-not-suggested",
        "others",
    ],
)
def test_unknown_variables_are_named_with_a_suggestion(environ: dict[str, str], problems: list[str]) -> None:
    assert settings_registry.unknown(environ) == problems


def test_all_unknown_variables_are_refused_in_one_cli_usage_error() -> None:
    with pytest.raises(UsageError) as refused:
        settings_registry.refuse_unknown({"TODO_SMTP_TLS": "1", "TODO_SMTP_SENDER": "a@example.com"})
    assert str(refused.value) == (
        "unknown setting TODO_SMTP_SENDER (did you mean TODO_SMTP_FROM?);"
        " unknown setting TODO_SMTP_TLS (did you mean TODO_SMTP_USE_TLS?)"
    )


@pytest.mark.parametrize(
    ("variables", "starttls", "use_tls"),
    [
        ({"TODO_SMTP_INSECURE_ALLOW_PASSWORD_WITHOUT_TLS": "true"}, False, False),
        ({"TODO_SMTP_USE_TLS": "true"}, False, True),
        ({"TODO_SMTP_STARTTLS": "true"}, True, False),
    ],
)
def test_the_documented_tls_settings_reach_the_mailer(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], starttls: bool, use_tls: bool
) -> None:
    """What docs/SECURITY.md tells users to set is what the SMTP client is given."""
    for name in [name for name in os.environ if name.upper().startswith("TODO_")]:
        monkeypatch.delenv(name)
    environ = {
        "TODO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "TODO_SMTP_FROM": "todo@example.com",
        "TODO_SMTP_PASSWORD": "secret",
        **variables,
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings_registry.refuse_unknown(environ)  # accepted as they are documented
    smtp = OperatorSettings().smtp()  # type: ignore[call-arg]  # database_url comes from the environment
    assert (smtp.sender, smtp.password, smtp.starttls, smtp.use_tls) == (
        "todo@example.com",
        "secret",
        starttls,
        use_tls,
    )


@pytest.mark.parametrize(
    ("variables", "refusal"),
    [
        ({"TODO_SMTP_PASSWORD": "secret"}, "the password would cross the network in clear"),
        (
            {"TODO_SMTP_STARTTLS": "true", "TODO_SMTP_USE_TLS": "true"},
            "set at most one of TODO_SMTP_STARTTLS and TODO_SMTP_USE_TLS",
        ),
    ],
    ids=["password-in-clear", "both-tls-modes"],
)
def test_smtp_settings_that_would_leak_or_contradict_are_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], refusal: str
) -> None:
    for name in [name for name in os.environ if name.upper().startswith("TODO_")]:
        monkeypatch.delenv(name)
    for name, value in {"TODO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", **variables}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UsageError, match=refusal):
        load_settings()
