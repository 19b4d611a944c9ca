"""Which characters free text may hold (domain/text.py), and who a reminder may go to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from todo_operator.domain import resources, text
from todo_operator.domain.timing import RecipientPolicy


@pytest.mark.parametrize(
    "title",
    ["a\r\nBcc: x", "a\rb", "a\nb", "a\tb", "a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b", "a\u2029b"],
)
def test_a_title_is_one_line(title: str) -> None:
    with pytest.raises(ValidationError) as refused:
        resources.TaskSpec(title=title, owner="alice@example.com")
    (problem,) = refused.value.errors()
    assert problem["loc"] == ("title",)
    assert text.SINGLE_LINE_MESSAGE in problem["msg"]
    assert "U+00" in problem["msg"] or "U+202" in problem["msg"]


@pytest.mark.parametrize("kept", ["Renew passport", "Pay 💶 – München", "👩‍💻 ship it", "a\u200db"])
def test_printable_text_and_joiners_are_kept(kept: str) -> None:
    assert resources.TaskSpec(title=kept, owner="alice@example.com").title == kept


def test_text_with_lines_keeps_line_breaks_and_tabs_only() -> None:
    spec = resources.TaskSpec(title="t", owner="alice@example.com", description="1.\tcall\r\n2. pay\n")
    assert spec.description == "1.\tcall\r\n2. pay\n"
    with pytest.raises(ValidationError, match="other than line breaks and tabs"):
        resources.ReminderSpec.model_validate({"taskRef": {"name": "t"}, "before": "1h", "message": "a\x0bb"})


@pytest.mark.parametrize(
    ("stored", "header"),
    [
        ("Pay rent\r\nBcc: x@evil.example", "Pay rent Bcc: x@evil.example"),
        ("a\r\n\r\n\tb", "a b"),
        ("\nleading and trailing\r", "leading and trailing"),
        ("a\u2028b\x85c", "a b c"),
        ("plain", "plain"),
    ],
)
def test_one_line_turns_each_run_of_breaks_into_one_space(stored: str, header: str) -> None:
    assert text.one_line(stored) == header


@pytest.mark.parametrize(
    ("recipient", "domains", "allowed"),
    [
        ("alice@example.com", set(), True),
        ("ALICE@Example.COM", set(), True),
        ("bob@example.com", set(), False),
        ("bob@example.com", {"example.com"}, True),
        ("bob@EXAMPLE.com", {"example.com"}, True),
        ("bob@sub.example.com", {"example.com"}, False),
        ("bob@example.com.evil.example", {"example.com"}, False),
        ("example.com", {"example.com"}, False),
        ("anyone@anywhere.example", {"*"}, True),
    ],
)
def test_reminders_go_to_the_owner_or_an_allowed_domain(
    recipient: str, domains: set[str], allowed: bool
) -> None:
    policy = RecipientPolicy(domains=frozenset(domains))
    assert policy.allows(recipient, owner="alice@example.com") is allowed
