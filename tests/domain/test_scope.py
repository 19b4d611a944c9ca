"""A namespace scope says the same as Kopf: its own matcher and its Kopf patterns, judged by Kopf's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kopf._cogs.structs.references import match_namespace

from todo_operator.domain.scope import NamespaceScope, check_glob

# Few letters, so that globs and names meet often.
NAMES = st.text(alphabet="ab-", min_size=1, max_size=6).map(lambda s: f"n{s}x")
GLOBS = st.text(alphabet="ab-*?", max_size=5).map(lambda s: f"n{s}".rstrip("-"))
SCOPES = st.builds(
    NamespaceScope,
    included=st.lists(GLOBS, max_size=3).map(tuple),
    excluded=st.lists(GLOBS, max_size=3).map(tuple),
)


def kopf_serves(scope: NamespaceScope, namespace: str) -> bool:
    """Whether Kopf, given the scope's patterns, watches ``namespace`` (no patterns: the whole cluster)."""
    patterns = scope.kopf_patterns()
    return not patterns or any(match_namespace(namespace, pattern) for pattern in patterns)  # type: ignore[arg-type]


@given(scope=SCOPES, namespace=NAMES)
def test_the_scope_matches_what_kopf_watches(scope: NamespaceScope, namespace: str) -> None:
    assert scope.matches(namespace) == kopf_serves(scope, namespace)


def test_exclusions_apply_to_every_included_glob() -> None:
    scope = NamespaceScope(included=("team-*", "payments"), excluded=("team-b-*",))
    assert scope.kopf_patterns() == ["team-*, !team-b-*", "payments, !team-b-*"]
    served = [ns for ns in ("team-a-1", "team-b-1", "payments", "other") if kopf_serves(scope, ns)]
    assert served == ["team-a-1", "payments"]


def test_exclusions_alone_serve_every_other_namespace() -> None:
    scope = NamespaceScope(excluded=("team-a-*", "team-b-*"))
    assert not scope.whole_cluster
    assert scope.kopf_patterns() == ["*, !team-a-*, !team-b-*"]
    assert [ns for ns in ("team-a-1", "default", "x") if kopf_serves(scope, ns)] == ["default", "x"]
    assert scope.describe() == "every namespace except team-a-*, team-b-*"


def test_no_globs_is_the_whole_cluster() -> None:
    assert NamespaceScope().whole_cluster
    assert NamespaceScope().kopf_patterns() == []


@pytest.mark.parametrize(
    "glob", ["!team-a", "team,a", "Team", "team_a", "team.a", "", "-a", "a" * 64, "[ab]"]
)
def test_what_is_not_a_glob_is_refused_with_what_is_allowed(glob: str) -> None:
    with pytest.raises(ValueError, match="is not a namespace glob: lowercase letters"):
        check_glob(glob)
    with pytest.raises(ValueError, match="is not a namespace glob"):
        NamespaceScope(excluded=(glob,))
