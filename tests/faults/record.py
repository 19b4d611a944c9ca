"""The whole record of a namespace, and the check every fault test ends with.

"Nothing lost, nothing done twice" is judged from the user's side, over every
place a fact ends up: the objects in the API server, the rows in PostgreSQL,
the outbox, the CloudEvents the Dapr sidecar received and the e-mails the
SMTP server accepted. A fault test runs its scenario, then calls
:func:`assert_nothing_lost_nothing_twice`, which waits (with a deadline) for
the record to settle and fails with every problem it still sees.

Usage::

    record = assert_nothing_lost_nothing_twice(
        Sources(api=api_server, database_url=url, dapr=dapr, smtp=smtp),
        namespace,
        occurrences={"plants": 2, "bins": 1},  # RecurringTask name -> occurrences it made
        reminders_sent=1,
    )

What is checked (:meth:`Record.problems`):

* RecurringTasks: objects and rows agree; each one's occurrences are rows
  numbered exactly 1..n (each once, names unique), and the live rows are
  exactly the Task objects that carry its label or controller reference;
* Tasks and Reminders: every live row has its object (same uid) and the other
  way round; a Reminder's ``status.phase`` is its row's phase;
* the outbox: no fact of :data:`ONCE_PER_SUBJECT` twice for one subject, and
  none missing (``*.created`` for every object, ``reminder.sent`` for every
  reminder sent);
* with a Dapr double: every outbox event published and received, nothing
  received that the outbox does not hold, nothing received twice;
* with an SMTP sink: one e-mail (by ``Message-ID``) for each reminder sent and
  none for the others; ``reminders_sent`` pins how many were sent.

What may legitimately happen more than once is said by the caller:
``republished=True`` where the outbox relay may publish an event again (it is
at least once: a relay that dies between publishing and marking publishes
again, consumers drop the copy by CloudEvent id), ``mail_duplicates=True``
where a sender may die between the SMTP server's "250 OK" and the commit
(the copy carries the same ``Message-ID``; docs/REMINDERS.md, "Exactly once").
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

import kube_emulator as apiserver
from todo_devstack.dapr import DaprThread
from todo_devstack.smtp import SmtpSink
from todo_operator.domain import resources
from todo_operator.kube import owners
from todo_operator.operator import objects

Json = dict[str, Any]

# Facts that happen once in the life of a subject (an object): a second one is a duplicate.
ONCE_PER_SUBJECT = frozenset(
    {
        "task.created",
        "task.completed",
        "task.deleted",
        "recurringtask.created",
        "recurringtask.ended",
        "recurringtask.deleted",
        "reminder.sent",
        "reminder.failed",
        "reminder.cancelled",
    }
)
# The topics of the outbox's own events (task-updates are derived from them by the relay).
OUTBOX_TOPICS = ("task-events", "reminders")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sources:
    """Where the record lives: the emulator, PostgreSQL, the Dapr double, the SMTP sink."""

    api: apiserver.ApiServerThread
    database_url: str
    dapr: DaprThread | None = None
    smtp: SmtpSink | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutboxEntry:
    event_id: str
    event_type: str
    subject: str
    published: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class Record:
    """One namespace's record, everywhere at once (see the module docstring)."""

    namespace: str
    recurring_tasks: dict[str, str]  # name -> uid (objects)
    tasks: dict[str, Json]  # name -> object
    reminders: dict[str, Json]  # name -> object
    recurring_task_rows: dict[str, str]  # name -> uid (rows not marked deleted)
    task_rows: list[Json]  # every row of the namespace, deleted or not
    reminder_rows: list[Json]
    outbox: list[OutboxEntry]
    published: collections.Counter[str] | None  # CloudEvent id -> deliveries to the Dapr double
    mails: collections.Counter[str] | None  # Message-ID -> e-mails received

    @classmethod
    def snapshot(cls, sources: Sources, namespace: str) -> Record:
        def objects_of(plural: str) -> dict[str, Json]:
            found = sources.api.objects(f"{resources.API_VERSION}/{plural}", namespace)
            return {obj["metadata"]["name"]: obj for obj in found}

        with psycopg.connect(sources.database_url, autocommit=True) as connection:
            recurring_rows = connection.execute(
                "SELECT name, uid::text FROM recurring_tasks WHERE namespace = %s AND deleted_at IS NULL",
                (namespace,),
            ).fetchall()
            task_rows = connection.execute(
                "SELECT uid::text AS uid, name, recurring_task_uid::text AS recurring_task_uid, occurrence,"
                " phase, deleted_at IS NOT NULL AS deleted FROM tasks WHERE namespace = %s",
                (namespace,),
            ).fetchall()
            task_columns = ("uid", "name", "recurring_task_uid", "occurrence", "phase", "deleted")
            reminder_rows = connection.execute(
                "SELECT uid::text, name, phase, deleted_at IS NOT NULL FROM reminders WHERE namespace = %s",
                (namespace,),
            ).fetchall()
            outbox = connection.execute(
                "SELECT event_id::text, event_type, subject, published_at IS NOT NULL FROM outbox"
                " WHERE subject LIKE %s ORDER BY id",
                (f"{namespace}/%",),
            ).fetchall()
        published: collections.Counter[str] | None = None
        if sources.dapr is not None:
            published = collections.Counter(
                received.event["id"]
                for received in sources.dapr.events()
                if received.topic in OUTBOX_TOPICS
                and str(received.event.get("subject", "")).startswith(f"{namespace}/")
            )
        mails: collections.Counter[str] | None = None
        if sources.smtp is not None:
            mails = collections.Counter(str(message["Message-ID"]) for message in sources.smtp.messages)
        recurring = objects_of("recurringtasks")
        return cls(
            namespace=namespace,
            recurring_tasks={name: obj["metadata"]["uid"] for name, obj in recurring.items()},
            tasks=objects_of("tasks"),
            reminders=objects_of("reminders"),
            recurring_task_rows=dict(recurring_rows),
            task_rows=[dict(zip(task_columns, row, strict=True)) for row in task_rows],
            reminder_rows=[
                {"uid": uid, "name": name, "phase": phase, "deleted": deleted}
                for uid, name, phase, deleted in reminder_rows
            ],
            outbox=[
                OutboxEntry(event_id=event_id, event_type=event_type, subject=subject, published=done)
                for event_id, event_type, subject, done in outbox
            ],
            published=published,
            mails=mails,
        )

    # --- views --------------------------------------------------------------------------------------

    def occurrence_objects(self, recurring_task: str) -> list[tuple[int, str]]:
        """(index, name) of the Task objects that are occurrences of ``recurring_task`` (label and owner)."""
        uid = self.recurring_tasks.get(recurring_task) or self.recurring_task_rows.get(recurring_task)
        found = []
        for name, task in self.tasks.items():
            labels = task["metadata"].get("labels") or {}
            owner = owners.controller_of(task, kind="RecurringTask")
            if labels.get(objects.LABEL_RECURRING_TASK_UID) == uid or (owner and owner.get("uid") == uid):
                found.append((objects.occurrence_index(task) or 0, name))
        return sorted(found)

    def occurrence_rows(self, recurring_task: str, *, with_deleted: bool = True) -> list[tuple[int, str]]:
        """(occurrence, name) of the tasks rows that point at ``recurring_task``."""
        uid = self.recurring_tasks.get(recurring_task) or self.recurring_task_rows.get(recurring_task)
        return sorted(
            (row["occurrence"] or 0, row["name"])
            for row in self.task_rows
            if row["recurring_task_uid"] == uid and (with_deleted or not row["deleted"])
        )

    def events_of(self, event_type: str) -> list[str]:
        """The subjects of the outbox events of one type, in outbox order."""
        return [entry.subject for entry in self.outbox if entry.event_type == event_type]

    def sent_reminders(self) -> list[str]:
        return sorted(row["name"] for row in self.reminder_rows if row["phase"] == "Sent")

    # --- the check ------------------------------------------------------------------------------------

    def problems(
        self,
        *,
        occurrences: Mapping[str, int],
        reminders_sent: int | None = None,
        republished: bool = False,
        mail_duplicates: bool = False,
        once_per_subject: frozenset[str] = ONCE_PER_SUBJECT,
        withdrawn: Mapping[str, int] | None = None,
    ) -> list[str]:
        """Everything that is lost, doubled or inconsistent (empty: the record is whole).

        ``withdrawn``: per RecurringTask, how many occurrences made by a rule edited meanwhile
        (F17) were removed again by the operator; they stay in the record as deleted rows.
        """
        found: list[str] = []
        found += self._occurrence_problems(occurrences, withdrawn or {})
        found += self._row_problems()
        found += self._outbox_problems(once_per_subject)
        found += self._publication_problems(republished=republished)
        found += self._mail_problems(reminders_sent=reminders_sent, duplicates=mail_duplicates)
        return found

    def _occurrence_problems(self, expected: Mapping[str, int], withdrawn: Mapping[str, int]) -> list[str]:
        found = []
        if set(self.recurring_tasks) != set(expected):
            found.append(f"RecurringTasks {sorted(self.recurring_tasks)}, expected {sorted(expected)}")
        for name, count in expected.items():
            rows = self.occurrence_rows(name)
            live_rows = self.occurrence_rows(name, with_deleted=False)
            objects_ = self.occurrence_objects(name)
            if withdrawn.get(name):
                # The removed ones repeat an index of a live one; the rest must be whole as usual.
                removed = [row for row in rows if row not in live_rows and row[0] in dict(live_rows)]
                if len(removed) != withdrawn[name]:
                    found.append(f"{name}: withdrawn occurrences {removed}, expected {withdrawn[name]}")
                rows = [row for row in rows if row not in removed]
            if [index for index, _ in rows] != list(range(1, count + 1)):
                found.append(f"{name}: occurrence rows {rows}, expected occurrences 1..{count} once each")
            if objects_ != live_rows:
                found.append(f"{name}: occurrence objects {objects_} but rows {live_rows}")
            if len({task for _, task in rows}) != len(rows):
                found.append(f"{name}: two occurrences share a name: {rows}")
        return found

    def _row_problems(self) -> list[str]:
        found = []
        if self.recurring_task_rows != self.recurring_tasks:
            found.append(f"RecurringTask rows {self.recurring_task_rows} != objects {self.recurring_tasks}")
        task_rows = {row["name"]: row["uid"] for row in self.task_rows if not row["deleted"]}
        task_objects = {name: task["metadata"]["uid"] for name, task in self.tasks.items()}
        if task_rows != task_objects:
            found.append(f"Task rows {sorted(task_rows)} != objects {sorted(task_objects)}")
        reminder_rows = {row["name"]: row["phase"] for row in self.reminder_rows if not row["deleted"]}
        reminder_objects = {
            name: (reminder.get("status") or {}).get("phase") for name, reminder in self.reminders.items()
        }
        if reminder_rows != reminder_objects:
            found.append(f"Reminder rows {reminder_rows} != objects (status.phase) {reminder_objects}")
        return found

    def _outbox_problems(self, once_per_subject: frozenset[str]) -> list[str]:
        found = []
        facts = collections.Counter(
            (entry.event_type, entry.subject) for entry in self.outbox if entry.event_type in once_per_subject
        )
        found += [
            f"{type_} recorded {n} times for {subject}" for (type_, subject), n in facts.items() if n > 1
        ]
        for name in self.recurring_tasks:
            if not facts[("recurringtask.created", f"{self.namespace}/{name}")]:
                found.append(f"no recurringtask.created for {name}")
        for row in self.task_rows:
            if not facts[("task.created", f"{self.namespace}/{row['name']}")]:
                found.append(f"no task.created for {row['name']}")
        for name in self.sent_reminders():
            if not facts[("reminder.sent", f"{self.namespace}/{name}")]:
                found.append(f"no reminder.sent for {name}")
        return found

    def _publication_problems(self, *, republished: bool) -> list[str]:
        if self.published is None:
            return []
        found = []
        pending = [entry.event_type + " " + entry.subject for entry in self.outbox if not entry.published]
        if pending:
            found.append(f"outbox events not published yet: {pending}")
        recorded = {entry.event_id for entry in self.outbox}
        lost = [entry for entry in self.outbox if entry.published and not self.published[entry.event_id]]
        if lost:
            found.append(f"marked published but never received: {[e.event_type for e in lost]}")
        phantom = set(self.published) - recorded
        if phantom:
            found.append(f"received CloudEvents that the outbox does not hold: {sorted(phantom)}")
        twice = {event_id: n for event_id, n in self.published.items() if n > 1}
        if twice and not republished:
            found.append(f"CloudEvents received more than once: {twice}")
        return found

    def _mail_problems(self, *, reminders_sent: int | None, duplicates: bool) -> list[str]:
        found = []
        sent = self.sent_reminders()
        if reminders_sent is not None and len(sent) != reminders_sent:
            found.append(f"{len(sent)} reminders sent ({sent}), expected {reminders_sent}")
        if self.mails is None:
            return found
        expected = {f"<{row['uid']}@todo-operator>" for row in self.reminder_rows if row["phase"] == "Sent"}
        ours = {row_id: n for row_id, n in self.mails.items() if row_id in self._reminder_message_ids()}
        if set(ours) != expected:
            found.append(
                f"e-mails for {sorted(ours)}, expected one for each sent reminder {sorted(expected)}"
            )
        twice = {message_id: n for message_id, n in ours.items() if n > 1}
        if twice and not duplicates:
            found.append(f"e-mails received more than once: {twice}")
        return found

    def _reminder_message_ids(self) -> set[str]:
        return {f"<{row['uid']}@todo-operator>" for row in self.reminder_rows}


def assert_nothing_lost_nothing_twice(
    sources: Sources,
    namespace: str,
    *,
    occurrences: Mapping[str, int],
    reminders_sent: int | None = None,
    republished: bool = False,
    mail_duplicates: bool = False,
    once_per_subject: frozenset[str] = ONCE_PER_SUBJECT,
    timeout: float = 30.0,
    quiet: float = 0.5,
    withdrawn: Mapping[str, int] | None = None,
) -> Record:
    """Wait for the record to be whole, check it again ``quiet`` seconds later, and return it.

    Fails with every problem left at the deadline. The second look catches a
    duplicate that arrives just after the record first looked right.
    """

    def check() -> tuple[Record, list[str]]:
        record = Record.snapshot(sources, namespace)
        return record, record.problems(
            occurrences=occurrences,
            reminders_sent=reminders_sent,
            republished=republished,
            mail_duplicates=mail_duplicates,
            once_per_subject=once_per_subject,
            withdrawn=withdrawn,
        )

    record, problems = _poll(check, timeout=timeout)
    if not problems:
        time.sleep(quiet)
        record, problems = check()
    assert not problems, "the record is not whole:\n  " + "\n  ".join(problems)
    return record


def _poll(check: Callable[[], tuple[Record, list[str]]], *, timeout: float) -> tuple[Record, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        record, problems = check()
        if not problems or time.monotonic() >= deadline:
            return record, problems
        time.sleep(0.1)
