"""Which characters free text may hold, and how it is made safe for one-line protocol fields.

A title ends up in an e-mail's ``Subject:`` (and tomorrow in a chat message's
heading or a calendar's ``SUMMARY``): a line break there ends the header and
starts another one (``Bcc: …``), and other control characters make mail
libraries refuse the whole message. So user text is met twice:

* **refused at the edge** where a control character has no meaning: a title
  is one line; a description or a message may hold line breaks and tabs but
  nothing else below U+0020 (nor DEL and the C1 controls). The CRD carries
  the same rule as CEL, so ``kubectl apply`` and the REST API refuse alike,
  each naming the field;
* **made safe on the way out** (:func:`one_line`), for rows written before
  the rule existed or by anything that did not go through the schema: what
  reaches a one-line field never holds a line break, whatever is stored.

Control characters are the Unicode category ``Cc`` (C0, DEL, C1); the line
and paragraph separators U+2028/U+2029 break lines in many renderers, so a
single line refuses them too. Formatting characters (``Cf``, e.g. the
zero-width joiner inside emoji) are left alone: they carry meaning.
"""

from __future__ import annotations

import re

# Everything that ends or breaks a line, or that a protocol may take as a delimiter.
_SINGLE_LINE_FORBIDDEN = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"
# Multi-line text keeps tab, line feed and carriage return.
_MULTI_LINE_FORBIDDEN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"

_single_line = re.compile(_SINGLE_LINE_FORBIDDEN)
_multi_line = re.compile(_MULTI_LINE_FORBIDDEN)
_breaks = re.compile(_SINGLE_LINE_FORBIDDEN + "+")

SINGLE_LINE_MESSAGE = "must be one line: no line breaks, tabs or other control characters"
MULTI_LINE_MESSAGE = "must not contain control characters other than line breaks and tabs"


def _cel_matches(pattern: str) -> str:
    # The CEL string literal spells each character as an escape (\x00, \u2028) that CEL
    # decodes before the regular expression sees it, so the CRD stays plain ASCII and
    # RE2 (the API server) and Python's re (the emulator) read the same class.
    return f"!self.matches('{pattern}')"


SINGLE_LINE_RULE = _cel_matches(_SINGLE_LINE_FORBIDDEN)
MULTI_LINE_RULE = _cel_matches(_MULTI_LINE_FORBIDDEN)


def _describe(text: str, found: re.Match[str]) -> str:
    return f"U+{ord(found.group()):04X} at position {found.start() + 1}"


def check_single_line(text: str) -> str:
    """``text`` if it is one line of printable text; ValueError naming the first offending character."""
    found = _single_line.search(text)
    if found is not None:
        raise ValueError(f"{SINGLE_LINE_MESSAGE} (found {_describe(text, found)})")
    return text


def check_multi_line(text: str) -> str:
    """``text`` if its only control characters are tabs and line breaks."""
    found = _multi_line.search(text)
    if found is not None:
        raise ValueError(f"{MULTI_LINE_MESSAGE} (found {_describe(text, found)})")
    return text


def one_line(text: str) -> str:
    """``text`` with every run of control characters and line separators turned into one space.

    For one-line protocol fields (a mail header, a chat title): whatever is
    stored, the result cannot start a new header or line.
    """
    return _breaks.sub(" ", text).strip()
