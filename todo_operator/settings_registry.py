"""Every ``TODO_*`` setting of the product, gathered from the settings classes themselves.

Each command reads its settings through pydantic-settings classes, and such a
class ignores variables it does not know. So a misspelt or outdated name was
dropped without a word: the docs named ``TODO_SMTP_USE_TLS`` while the code
read ``TODO_SMTP_TLS``, and following them sent the SMTP password in clear
(issue #16). Now every command that reads settings first refuses any
``TODO_*`` variable that no command reads, naming the closest known one.

"Known" is the union over all commands, not the command's own settings: one
ConfigMap or Secret is often given to every pod (the chart gives the API
``TODO_DAPR_ENABLED``), and that must not stop the API. The names come from
the classes' fields and env prefixes, never from a list kept by hand, and
docs/SETTINGS.md is generated from here (a test keeps it current):

    python -m todo_operator.settings_registry --markdown > docs/SETTINGS.md
"""

from __future__ import annotations

import argparse
import difflib
import sys
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from todo_operator.api.settings import ApiSettings, Connections
from todo_operator.events.relay import RelaySettings
from todo_operator.operator.settings import OperatorSettings
from todo_operator.store.settings import MigrateSettings
from todo_operator.telemetry.settings import TelemetrySettings
from todo_operator.usage import UsageError

PREFIX = "TODO_"

# Which settings classes each command fills from the environment. `crds` and `preview`
# read none: they print what the models and a schedule say, the same in every environment.
READERS: dict[str, tuple[type[BaseSettings], ...]] = {  # in the CLI's order (a test holds it)
    "run": (OperatorSettings, RelaySettings, TelemetrySettings),
    "migrate": (MigrateSettings,),
    "api": (Connections, ApiSettings, TelemetrySettings),
    "relay": (RelaySettings, TelemetrySettings),
    "notify": (OperatorSettings, TelemetrySettings),
    # The demo passes its connections itself; every other field still comes from TODO_*.
    "demo": (OperatorSettings, RelaySettings, ApiSettings, TelemetrySettings),
}

# Names read before issue #16 that users were told to set. A deployment still setting one
# is pointed at its successor, which difflib alone would miss (SENDER looks more like
# USERNAME than FROM).
RENAMED: dict[str, str] = {
    "TODO_SMTP_SENDER": "TODO_SMTP_FROM",
    "TODO_SMTP_TLS": "TODO_SMTP_USE_TLS",
}

# Read by the test suite, never by a command. Documented for a developer's shell (the
# team's testing notes, pyproject's `e2e` marker), and the tests start the commands with
# that shell's environment: refusing it would make the suite fail wherever it is set.
TEST_HARNESS: dict[str, str] = {
    "TODO_E2E_KUBECONFIG": "run the end-to-end tests (pytest -m e2e) against this cluster",
}


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One row of docs/SETTINGS.md: a variable as one or more classes read it alike."""

    variable: str
    type: str
    default: str
    description: str
    read_by: tuple[str, ...]


def _variable(settings_class: type[BaseSettings], name: str, field: FieldInfo) -> str:
    if isinstance(field.validation_alias, str):  # pydantic-settings reads an alias without the prefix
        return field.validation_alias.upper()
    return f"{settings_class.model_config.get('env_prefix', '')}{name}".upper()


def _declared() -> Iterator[tuple[str, type[BaseSettings], FieldInfo]]:
    """(variable, class, field) of every field of every class a command reads, in READERS order."""
    seen: set[type[BaseSettings]] = set()
    for classes in READERS.values():
        for settings_class in classes:
            if settings_class in seen:
                continue
            seen.add(settings_class)
            for name, field in settings_class.model_fields.items():
                yield _variable(settings_class, name, field), settings_class, field


def _settings() -> frozenset[str]:
    return frozenset(variable for variable, _, _ in _declared())


def known() -> frozenset[str]:
    """Every ``TODO_*`` variable some command (or the test suite) reads."""
    return _settings() | frozenset(TEST_HARNESS)


def unknown(environ: Mapping[str, str]) -> list[str]:
    """Problems with ``environ``, one per unknown ``TODO_*`` variable (with a suggestion)."""
    names = known()
    suggestions = sorted(_settings())  # never the test suite's: TODO_KUBECONFIG is no typo of it
    problems = []
    # pydantic-settings matches names case-insensitively, so todo_smtp_host counts too.
    for variable in sorted(name for name in environ if name.upper().startswith(PREFIX)):
        if variable.upper() in names:
            continue
        close = RENAMED.get(variable.upper()) or next(
            iter(difflib.get_close_matches(variable.upper(), suggestions, n=1)), None
        )
        problems.append(f"unknown setting {variable}" + (f" (did you mean {close}?)" if close else ""))
    return problems


def refuse_unknown(environ: Mapping[str, str]) -> None:
    """Raise the CLI's one-line error when ``environ`` holds a ``TODO_*`` variable nobody reads."""
    if problems := unknown(environ):
        raise UsageError("; ".join(problems))


def _strip_optional(annotation: object) -> object:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


_TYPE_NAMES: dict[object, str] = {
    bool: "true or false",
    int: "integer",
    float: "number",
    str: "text",
    SecretStr: "text (secret)",
    list[str]: "comma-separated list",
}
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥ "),
    (annotated_types.Gt, "gt", "> "),
    (annotated_types.Le, "le", "≤ "),
    (annotated_types.Lt, "lt", "< "),
    (annotated_types.MinLen, "min_length", "length ≥ "),
    (annotated_types.MaxLen, "max_length", "length ≤ "),
)


def _type(field: FieldInfo) -> str:
    annotation = _strip_optional(field.annotation)
    if typing.get_origin(annotation) is typing.Literal:
        *others, last = (f"`{value}`" for value in typing.get_args(annotation))
        text = f"{', '.join(others)} or {last}" if others else last
    else:
        text = _TYPE_NAMES.get(annotation, str(annotation))
    bounds = [
        f"{sign}{getattr(constraint, attribute)}"
        for constraint in field.metadata
        for kind, attribute, sign in _BOUNDS
        if isinstance(constraint, kind)
    ]
    return ", ".join([text, *bounds])


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is list:
        return "empty"
    if field.default_factory is not None:
        return "see description"  # computed when read (e.g. from DAPR_HTTP_PORT)
    if field.default is None:
        return "unset"
    if isinstance(field.default, bool):
        return f"`{str(field.default).lower()}`"
    return f"`{field.default}`"


def settings() -> list[Setting]:
    """One row per variable and per way it is read (type and default); commands in CLI order."""
    commands_of: dict[type[BaseSettings], list[str]] = {}
    for command, classes in READERS.items():
        for settings_class in classes:
            commands_of.setdefault(settings_class, []).append(command)
    rows: dict[tuple[str, str, str], tuple[str, set[str]]] = {}
    for variable, settings_class, field in _declared():
        key = (variable, _type(field), _default(field))
        description, readers = rows.setdefault(key, (field.description or "", set()))
        if not description and field.description:  # the first class that explains it
            rows[key] = (field.description, readers)
        readers.update(commands_of[settings_class])
    order = list(READERS)
    return [
        Setting(
            variable=variable,
            type=type_,
            default=default,
            description=description,
            read_by=tuple(sorted(readers, key=order.index)),
        )
        for (variable, type_, default), (description, readers) in sorted(rows.items())
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """docs/SETTINGS.md."""
    lines = [
        "# Settings",
        "",
        "<!-- Generated from todo_operator/settings_registry.py; do not edit. Regenerate with",
        "     .venv/bin/python -m todo_operator.settings_registry --markdown > docs/SETTINGS.md -->",
        "",
        "Every `TODO_*` environment variable the commands read. A command that reads settings",
        "refuses to start (exit code 2) when it sees any other `TODO_*` variable, and names the",
        "closest known one: a misspelt setting is never silently ignored. Every command accepts",
        "every variable below (one ConfigMap or Secret may serve all pods); *read by* says which",
        "use it. `todo-operator crds` and `todo-operator preview` read no settings.",
        "",
        "Lists are comma-separated; `true`/`false` also accept `1`/`0`, `yes`/`no`, `on`/`off`.",
        "Names are matched without regard to case, as pydantic-settings does.",
        "",
        "| variable | type | default | read by | description |",
        "|---|---|---|---|---|",
        *(
            f"| `{row.variable}` | {_cell(row.type)} | {_cell(row.default)} | {', '.join(row.read_by)}"
            f" | {_cell(row.description)} |"
            for row in settings()
        ),
        "",
        "## Former names",
        "",
        "Refused like any unknown name, with the new name as the suggestion.",
        "",
        "| former | now |",
        "|---|---|",
        *(f"| `{former}` | `{now}` |" for former, now in sorted(RENAMED.items())),
        "",
        "## Read by the test suite only",
        "",
        "Accepted by every command, so that tests started from a shell that sets them can run it.",
        "",
        "| variable | what for |",
        "|---|---|",
        *(f"| `{variable}` | {_cell(purpose)} |" for variable, purpose in sorted(TEST_HARNESS.items())),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m todo_operator.settings_registry", description=__doc__)
    parser.add_argument("--markdown", action="store_true", required=True, help="print docs/SETTINGS.md")
    parser.parse_args(argv)
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
