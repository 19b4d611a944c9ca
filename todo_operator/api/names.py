"""Per-user object names: the API's ``groceries`` is ``u1a2b3c4d5e-groceries`` in the cluster.

The shim works in one namespace shared by every user, and Kubernetes names
are unique per namespace. Without a per-user prefix, Bob creating a task
called ``groceries`` would get "already exists" when Alice has one — telling
him that it exists (an existence leak, and a nuisance). So each user's objects
carry a prefix derived from their id; the API shows and accepts names
without it. Objects a user made with kubectl (no prefix) are shown by their
full name and found by it too; ownership is always checked on ``spec.owner``,
never inferred from the prefix.
"""

from __future__ import annotations

import hashlib

PUBLIC_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$"
PUBLIC_NAME_MAX = 50


def owner_prefix(owner: str) -> str:
    """``u`` + 10 hex digits of the owner's hash + ``-``: stable, short, not reversible by eye."""
    return "u" + hashlib.sha256(owner.encode()).hexdigest()[:10] + "-"


def object_name(*, owner: str, public: str) -> str:
    return owner_prefix(owner) + public


def public_name(*, owner: str, name: str) -> str:
    """The name as the owner sees it (prefix removed when it is theirs)."""
    return name.removeprefix(owner_prefix(owner))


def candidates(*, owner: str, public: str) -> tuple[str, ...]:
    """Object names ``public`` may refer to: the prefixed one first, then as given (kubectl-made)."""
    prefixed = object_name(owner=owner, public=public)
    return (prefixed, public)
