"""Hostile text through every delivery channel: what goes on the wire, read back by someone else's parser.

Titles and messages are drawn from the same hostile strings as the schema
tests (control characters, separators, invisible characters, huge and
arbitrary text), as they could stand in a row written before the CRD refused
them. Each reminder e-mail is composed by our code, flattened by aiosmtplib
exactly as it is sent (``flatten_message``, also where it finds the
envelope's recipients), and parsed again by the standard library's
``BytesParser``: the headers must be ours alone, the recipient the one
intended, the subject one line, and the message's text intact in the body.
(E-mail is the one channel today; each new channel gets its case here.)
"""

from __future__ import annotations

import collections
import re
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any

from aiosmtplib import email as wire
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile import strategies as hostile
from tests.hostile import tally
from todo_operator.channels import mail
from todo_operator.domain import text

EXAMPLES = 250
HEADERS = ["Content-Type", "MIME-Version", "From", "To", "Subject", "Date", "Message-ID", "X-Todo-Reminder"]
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NOW = datetime(2026, 12, 9, 17, 0, tzinfo=UTC)

_TITLES = hostile.hostile_text("Renew passport").filter(lambda title: len(title) <= 4000)
_MESSAGES = hostile.hostile_text("Bring the old passport").filter(lambda message: len(message) <= 4000)
_DUE = st.sampled_from([None, datetime(2026, 12, 10, 8, 0, tzinfo=UTC)])


def _body(parsed: Any) -> str:
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    content: str = plain.get_content()
    return content


def _lines(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def check_email(title: str, message: str, due: datetime | None) -> str:
    """Compose, flatten and parse one reminder e-mail; return which kind of title it was."""
    composed = mail.compose(
        mail.ReminderMail(
            reminder_uid="0b7f6c1e-6a55-4f0e-9d1c-3a9e2f1d7c11",
            recipient="alice@example.com",
            task_title=title,
            task_due_at=due,
            time_zone="Europe/Berlin",
            message=message,
            late=False,
        ),
        sender="todo@example.com",
        now=NOW,
    )
    # What aiosmtplib sends, and whom it sends it to (it reads the envelope from the headers).
    flat = wire.flatten_message(composed)
    assert wire.extract_recipients(composed) == ["alice@example.com"]
    parsed = BytesParser(policy=policy.default).parsebytes(flat)

    assert [name for name, _ in parsed.items()] == HEADERS, (title, flat[:600])
    assert parsed["To"] == "alice@example.com"
    subject = str(parsed["Subject"])
    assert not _LINE_BREAKING.search(subject), subject
    assert subject.startswith(f"Reminder: {text.one_line(title)}"), (subject, title)
    body = _body(parsed)
    if message.strip():
        # Line endings are the transport's to choose; the characters between them are the user's.
        assert _lines(message).rstrip() in _lines(body), (message, body)
    return "control" if _LINE_BREAKING.search(title) else "plain"


def test_every_hostile_title_and_message_is_one_header_and_intact_text() -> None:
    outcomes: collections.Counter[str] = collections.Counter()

    @settings(hostile.DETERMINISTIC, max_examples=EXAMPLES)
    @given(
        batch=st.lists(st.tuples(_TITLES, _MESSAGES, _DUE), min_size=hostile.BATCH, max_size=hostile.BATCH)
    )
    def each(batch: list[tuple[str, str, datetime | None]]) -> None:
        for title, message, due in batch:
            outcomes[check_email(title, message, due)] += 1

    each()
    tally.record("channel/email", sum(outcomes.values()))
    # The strategies must keep reaching titles with line breaks, or this test has gone blind.
    assert outcomes["control"] > EXAMPLES // 4, outcomes
    assert outcomes["plain"] > EXAMPLES // 4, outcomes


def test_the_check_catches_a_header_injection() -> None:
    """Negative control: a title put into the Subject as it is fails the check."""
    original = text.one_line
    try:
        text.one_line = lambda value: value  # type: ignore[assignment]
        try:
            check_email("Pay rent\r\nBcc: mallory@evil.example", "", None)
        except Exception:
            return
        raise AssertionError("a Bcc header injected through the title went unnoticed")
    finally:
        text.one_line = original  # type: ignore[assignment]
