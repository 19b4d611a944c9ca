"""
``labelSelector`` and ``fieldSelector`` as list and watch requests send them.

Label selectors support the full string syntax (``=``, ``==``, ``!=``, ``in``,
``notin``, ``key``, ``!key``). Field selectors support ``=``, ``==``, ``!=``
on any dotted path; the real server accepts only a per-kind allow-list
(``metadata.name``, ``metadata.namespace``, ``involvedObject.*`` for events…)
— being more lenient here never breaks a client that works on a real cluster.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from kube_emulator import errors

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_TERM = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*([^\s,]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside of parentheses: ``a in (x,y),b`` → ``["a in (x,y)", "b"]``."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    terms.append(current)
    return [term for term in terms if term.strip()]


@dataclasses.dataclass(frozen=True)
class _LabelTerm:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def __call__(self, labels: Mapping[str, str]) -> bool:
        match self.op:
            case "exists":
                return self.key in labels
            case "!exists":
                return self.key not in labels
            case "=" | "in":
                return self.key in labels and labels[self.key] in self.values
            case _:  # "!=" | "notin": true also when the label is absent (as in the real server)
                return labels.get(self.key) not in self.values


def parse_label_selector(selector: str | None) -> Predicate:
    terms: list[_LabelTerm] = []
    for text in _split_terms(selector or ""):
        if match := _SET_TERM.match(text):
            values = frozenset(v.strip() for v in match[3].split(",") if v.strip())
            terms.append(_LabelTerm(match[1], match[2], values))
        elif match := _EQ_TERM.match(text):
            op = "!=" if match[2] == "!=" else "="
            terms.append(_LabelTerm(match[1], op, frozenset([match[3]])))
        elif match := _EXISTS_TERM.match(text):
            terms.append(_LabelTerm(match[2], "!exists" if match[1] else "exists"))
        else:
            raise errors.bad_request(f"unable to parse requirement: {text!r}")

    def predicate(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return predicate


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(selector: str | None) -> Predicate:
    terms: list[tuple[str, bool, str]] = []
    for text in _split_terms(selector or ""):
        match = _EQ_TERM.match(text)
        if not match:
            raise errors.bad_request(f"invalid selector: {text!r}; can't understand {text!r}")
        terms.append((match[1], match[2] != "!=", match[3]))

    def predicate(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in terms)

    return predicate


def combine(*predicates: Predicate) -> Predicate:
    return lambda obj: all(predicate(obj) for predicate in predicates)
