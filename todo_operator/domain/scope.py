"""Which namespaces one operator serves: globs in, globs out (docs/ARCHITECTURE.md, "Shards").

Kopf watches what its namespace patterns match and Kopf alone decides which
objects reach the handlers; but the operator also finds work in PostgreSQL
(tasks turning overdue, reminders due, job triggers), where Kopf's patterns
mean nothing. A scope is the one description both sides read: Kopf's patterns
(``kopf_patterns``) and PostgreSQL regular expressions (``sql_regexes``) come
from the same globs, so the rows a shard acts on are the objects it watches.

The grammar is the small part of Kopf's that both sides can say exactly:
``*`` and ``?`` in otherwise literal namespace names, included globs OR'ed,
excluded globs subtracted. Kopf's own matcher (``kopf._cogs.structs
.references.match_namespace``) is the oracle in the tests.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

# A namespace name (a DNS label) with * and ? for any characters / one character.
GLOB = re.compile(r"[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?")


def check_glob(glob: str) -> str:
    """``glob`` if it is one; else a ValueError saying what is allowed."""
    if not GLOB.fullmatch(glob):
        raise ValueError(
            f"{glob!r} is not a namespace glob: lowercase letters, digits and '-', with '*' for any"
            " characters and '?' for one (exclusions go in TODO_NAMESPACES_EXCLUDED, not as '!')"
        )
    return glob


def _posix_regex(glob: str) -> str:
    # Globs hold only [-a-z0-9*?]: nothing else needs escaping in a POSIX regex.
    return "^" + glob.replace("*", ".*").replace("?", ".") + "$"


@dataclass(frozen=True)
class NamespaceScope:
    """The namespaces matching any of ``included`` (every one if empty) and none of ``excluded``."""

    included: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for glob in (*self.included, *self.excluded):
            check_glob(glob)

    @property
    def whole_cluster(self) -> bool:
        return not self.included and not self.excluded

    def matches(self, namespace: str) -> bool:
        included = not self.included or any(fnmatch.fnmatchcase(namespace, g) for g in self.included)
        return included and not any(fnmatch.fnmatchcase(namespace, g) for g in self.excluded)

    def kopf_patterns(self) -> list[str]:
        """Kopf's ``namespaces=`` (empty: the whole cluster, ``clusterwide=True``).

        In a Kopf pattern the first glob includes and ``!`` globs after it exclude
        (docs.kopf.dev, "Scopes"): one pattern per included glob, each carrying every exclusion.
        """
        if self.whole_cluster:
            return []
        exclusions = [f"!{glob}" for glob in self.excluded]
        return [", ".join([glob, *exclusions]) for glob in self.included or ("*",)]

    def sql_regexes(self) -> tuple[list[str], list[str]]:
        """(included, excluded) as PostgreSQL regular expressions, for ``namespace ~ ANY(...)``."""
        return [_posix_regex(g) for g in self.included or ("*",)], [_posix_regex(g) for g in self.excluded]

    def describe(self) -> str:
        if self.whole_cluster:
            return "every namespace"
        included = ", ".join(self.included) if self.included else "every namespace"
        return included + (f" except {', '.join(self.excluded)}" if self.excluded else "")


EVERY_NAMESPACE = NamespaceScope()
