"""An SMTP sink on loopback (aiosmtpd) for the tests and the demo.

It keeps every message it accepts (and, given a folder, writes each as an
``.eml`` file, numbered after those already there, so a demo that keeps its
state never overwrites an earlier e-mail), tells an optional listener about
each one (the demo prints a line), and can be told to answer the next N messages with an SMTP
error — 4xx for "try again later", 5xx for "this will not work" — so that
retry and fail-fast paths are tested against a real SMTP conversation.
"""

from __future__ import annotations

import email
import email.policy
import pathlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from todo_devstack.postgres import free_port


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        return self._sink._accept(envelope)


Listener = Callable[[EmailMessage, pathlib.Path | None], None]


def _last_number(folder: pathlib.Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    return max((int(path.stem) for path in folder.glob("*.eml") if path.stem.isdigit()), default=0)


class SmtpSink:
    def __init__(
        self,
        *,
        folder: pathlib.Path | None = None,
        port: int | None = None,
        on_message: Listener | None = None,
    ) -> None:
        """``on_message(message, saved_as)`` runs in the server's thread for each message accepted."""
        self.port = port or free_port()
        self._folder = folder
        self._on_message = on_message
        self._saved = _last_number(folder)
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self._envelope_recipients: list[list[str]] = []
        self._arrived_at: list[datetime] = []
        self._failures: list[str] = []
        self._arrived = threading.Condition(self._lock)
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def _accept(self, envelope: Any) -> str:
        saved_as: pathlib.Path | None = None
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self._messages.append(message)
            self._envelope_recipients.append(list(envelope.rcpt_tos))
            self._arrived_at.append(datetime.now(tz=UTC))
            if self._folder is not None:
                self._folder.mkdir(parents=True, exist_ok=True)
                self._saved += 1
                saved_as = self._folder / f"{self._saved:05d}.eml"
                saved_as.write_bytes(envelope.content)
            self._arrived.notify_all()
        if self._on_message is not None:
            self._on_message(message, saved_as)  # outside the lock: a slow listener holds up no one
        return "250 OK"

    def fail_next(self, reply: str, *, times: int = 1) -> None:
        """Answer the next ``times`` messages with ``reply``, e.g. ``"451 4.3.0 try later"``."""
        with self._lock:
            self._failures.extend([reply] * times)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def envelope_recipients(self) -> list[list[str]]:
        """Each accepted message's ``RCPT TO`` addresses: who it really went to, whatever its headers say."""
        with self._lock:
            return [list(recipients) for recipients in self._envelope_recipients]

    @property
    def arrivals(self) -> list[tuple[datetime, EmailMessage]]:
        """Each message with the moment it was accepted (for measuring delivery lag)."""
        with self._lock:
            return list(zip(self._arrived_at, self._messages, strict=True))

    def wait_for(self, count: int, *, timeout: float = 20.0) -> list[EmailMessage]:
        with self._lock:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout=timeout):
                raise AssertionError(
                    f"expected {count} e-mail(s) within {timeout}s, got {len(self._messages)}"
                )
            return list(self._messages)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
