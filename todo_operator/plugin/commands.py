"""``kubectl todo``: your tasks from the terminal, as a kubectl plugin.

kubectl runs ``kubectl-todo`` (installed with the package) for ``kubectl todo``.
Each verb is a thin edge over :mod:`.cluster` (the API server, with your
kubeconfig) and :mod:`.views` (what is shown). Click, not argparse as in
``todo-operator``: its completion API answers kubectl's plugin completion
protocol (:mod:`.completion`) from the same definitions.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click
from click.shell_completion import CompletionItem
from pydantic import ValidationError

from todo_operator.clock import Clock, SystemClock
from todo_operator.domain import crds, occurrences, ownership, recurrence, resources, tasks
from todo_operator.plugin import views
from todo_operator.plugin.cluster import Body, Cluster, PluginError

OWNER_VARIABLE = "KUBECTL_TODO_OWNER"
OUTPUTS = ("table", "wide", "yaml", "json", "name")


@dataclass
class Session:
    """What every verb works with: the cluster, who you are, the time and your time zone."""

    cluster_factory: Callable[[], Cluster]
    owner_flag: str | None
    zone: ZoneInfo
    clock: Clock
    _cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = self.cluster_factory()
        return self._cluster

    def owner(self) -> str | None:
        """You: ``--owner``, else $KUBECTL_TODO_OWNER, else your user name on the API server if an e-mail."""
        found = self.owner_flag or os.environ.get(OWNER_VARIABLE) or self.cluster.whoami()
        return found if found and re.fullmatch(resources.EMAIL_PATTERN, found) else None

    def required_owner(self) -> str:
        found = self.owner()
        if found is None:
            fail(f"who are you? pass --owner or set {OWNER_VARIABLE} to your e-mail address")
        return found

    def now(self) -> datetime:
        return self.clock.now()


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _complete_names(
    *kinds: crds.Kind,
) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """Names of ``kinds`` in the namespace, for shell completion (nothing when the cluster cannot say)."""

    def complete(context: click.Context, _: click.Parameter, incomplete: str) -> list[CompletionItem]:
        # Completion runs no command callbacks: the session comes from the flags typed so far.
        session = context.find_object(Session) or _session(**context.find_root().params)
        try:
            bodies = [body for kind in kinds for body in session.cluster.list(kind)]
        except PluginError:
            return []
        found = sorted({body["metadata"]["name"] for body in bodies})
        return [CompletionItem(name) for name in found if name.startswith(incomplete)]

    return complete


def _zone(name: str | None) -> ZoneInfo:
    """``--time-zone``, else this machine's zone by its IANA name ($TZ, then /etc/localtime), else UTC.

    A name, not just an offset: a series made with ``add --every`` keeps its wall-clock time
    across daylight saving changes only in a real zone.
    """
    chosen = name or os.environ.get("TZ", "").removeprefix(":") or _etc_localtime() or "UTC"
    try:
        return recurrence.load_zone(chosen)
    except recurrence.ScheduleError as error:
        raise click.BadParameter(str(error), param_hint="--time-zone") from None


def _etc_localtime() -> str | None:
    """The zone /etc/localtime links to (``/usr/share/zoneinfo/Europe/Berlin`` → ``Europe/Berlin``)."""
    target = str(pathlib.Path("/etc/localtime").resolve())
    _, found, zone = target.partition("/zoneinfo/")
    return zone if found else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kubeconfig", help="the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
@click.option("--context", "context_name", help="the kubeconfig context (default: its current one)")
@click.option("-n", "--namespace", help="the namespace (default: the context's)")
@click.option("--owner", help=f"your e-mail address, as tasks name their owner (default: ${OWNER_VARIABLE})")
@click.option("--time-zone", help="show and read times in this IANA zone (default: this machine's)")
@click.pass_context
def main(
    context: click.Context,
    kubeconfig: str | None,
    context_name: str | None,
    namespace: str | None,
    owner: str | None,
    time_zone: str | None,
) -> None:
    """Your tasks, recurring tasks and reminders (todo.dev) from the terminal.

    Reads and writes go through the API server with your kubeconfig, as
    kubectl's do: RBAC and the resources' validation apply.
    """
    context.obj = _session(
        kubeconfig=kubeconfig,
        context_name=context_name,
        namespace=namespace,
        owner=owner,
        time_zone=time_zone,
    )


def _session(
    *,
    kubeconfig: str | None = None,
    context_name: str | None = None,
    namespace: str | None = None,
    owner: str | None = None,
    time_zone: str | None = None,
) -> Session:
    """The one place the plugin's parts are put together (its composition root)."""
    return Session(
        cluster_factory=lambda: Cluster(kubeconfig=kubeconfig, context=context_name, namespace=namespace),
        owner_flag=owner,
        zone=_zone(time_zone),
        clock=SystemClock(),
    )


_output = click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUTS),
    default="table",
    help="table (default), wide, yaml, json, name",
)


def _emit(bodies: list[Body], *, output: str, rows: Callable[[], list[list[str]]], resource: str) -> None:
    if output in ("yaml", "json"):
        click.echo(views.document(bodies, output="yaml" if output == "yaml" else "json"))
    elif output == "name":
        if bodies:
            click.echo(views.names(bodies, resource=resource))
    elif len(bodies) == 0:
        click.echo("No tasks found.", err=True)
    else:
        click.echo(views.table(rows()))


@main.command(name="ls")
@click.option("--overdue", "selection", flag_value="overdue", help="only tasks past their due time")
@click.option("--today", "selection", flag_value="today", help="only open tasks due today")
@click.option("--all", "selection", flag_value="all", help="completed ones too")
@click.option("--all-owners", is_flag=True, help="everyone's tasks, not only yours")
@click.option("-A", "--all-namespaces", is_flag=True, help="in every namespace you may list")
@_output
@click.pass_obj
def list_tasks(
    session: Session, selection: str | None, all_owners: bool, all_namespaces: bool, output: str
) -> None:
    """Your open tasks, soonest due first (a table like kubectl get)."""
    owner = None if all_owners else session.owner()
    if owner is None and not all_owners:
        click.echo(f"note: showing every owner's tasks (pass --owner or set {OWNER_VARIABLE})", err=True)
    now = session.now()
    picked = views.select_tasks(
        session.cluster.list(crds.TASK, all_namespaces=all_namespaces),
        owner=owner,
        selection=selection or "open",  # type: ignore[arg-type]  # one of the flag values
        now=now,
        zone=session.zone,
    )
    _emit(
        picked,
        output=output,
        rows=lambda: views.task_rows(
            picked, now=now, zone=session.zone, wide=output == "wide", namespaces=all_namespaces
        ),
        resource=f"task.{resources.GROUP}",
    )


@main.command(name="next")
@click.option("--all-owners", is_flag=True, help="everyone's series, not only yours")
@_output
@click.pass_obj
def next_due(session: Session, all_owners: bool, output: str) -> None:
    """What is due next across your recurring tasks."""
    owner = None if all_owners else session.owner()
    series = [
        body
        for body in session.cluster.list(crds.RECURRING_TASK)
        if owner is None or views.owner_of(body) == owner
    ]
    now = session.now()
    _emit(
        series,
        output=output,
        rows=lambda: views.series_rows(series, now=now, zone=session.zone),
        resource=f"recurringtask.{resources.GROUP}",
    )


_DUE_HELP = "2026-12-10T17:00 (wall-clock time in your zone), an RFC 3339 instant, or +2h / +1d30m from now"


def _moment(text: str, *, now: datetime, zone: ZoneInfo, flag: str) -> datetime:
    """A time the user typed: ``+1h30m`` from now, a wall-clock time in ``zone``, or an instant."""
    if text.startswith("+"):
        try:  # to the minute: reminders and CronJobs count in minutes
            return (now + resources.parse_duration(text[1:])).replace(second=0, microsecond=0)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint=flag) from None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not {_DUE_HELP}", param_hint=flag) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def slug(title: str) -> str:
    """A name for the object from its title: ``Water the plants!`` → ``water-the-plants``."""
    text = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:50].rstrip("-")
    return text or "task"


def _validated[M: resources.Model](model: type[M], fields: dict[str, Any]) -> M:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        fail(resources.describe_validation_error(error))


@dataclass(frozen=True)
class _Draft:
    title: str
    description: str
    priority: str | None
    tags: tuple[str, ...]
    remind: tuple[str, ...]

    def fields(self, owner: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"title": self.title, "description": self.description, "owner": owner}
        if self.priority:
            fields["priority"] = self.priority
        fields["tags"] = list(self.tags)
        fields["reminders"] = [{"before": before} for before in self.remind]
        return fields


def _recurring_spec(draft: _Draft, *, owner: str, schedule: dict[str, Any]) -> Body:
    spec = _validated(
        resources.RecurringTaskSpec, {"schedule": schedule, "taskTemplate": draft.fields(owner)}
    )
    try:  # what the operator would refuse, refused here, before anything is made
        recurrence.Recurrence.compile(occurrences.schedule_spec(spec.schedule))
    except recurrence.ScheduleError as error:
        fail(f"spec.schedule: {error}")
    return spec.to_wire()


@main.command()
@click.argument("title")
@click.option("--due", help=f"when it is due (for a series: the first occurrence): {_DUE_HELP}")
@click.option("--every", type=click.Choice(["daily", "weekly", "monthly", "yearly"]), help="a recurring task")
@click.option("--interval", type=click.IntRange(min=1), help="with --every: every N days, weeks, ...")
@click.option("--rrule", help="a recurring task by an RFC 5545 rule, e.g. 'FREQ=WEEKLY;BYDAY=MO,TH'")
@click.option("--remind", multiple=True, help="e-mail a reminder this long before it is due: 1h, 1d, 7d")
@click.option("--priority", type=click.Choice(["low", "medium", "high", "urgent"]))
@click.option("--tag", multiple=True, help="a tag (repeatable)")
@click.option("--description", default="", help="more about it")
@click.option("--name", help="the object's name (default: from the title)")
@_output
@click.pass_obj
def add(
    session: Session,
    title: str,
    due: str | None,
    every: str | None,
    interval: int | None,
    rrule: str | None,
    remind: tuple[str, ...],
    priority: str | None,
    tag: tuple[str, ...],
    description: str,
    name: str | None,
    output: str,
) -> None:
    """Add a task, or with --every/--rrule a recurring task (its first occurrence is due at --due)."""
    if every and rrule:
        fail("give --every or --rrule, not both")
    zone = session.zone
    when = None if due is None else _moment(due, now=session.now(), zone=zone, flag="--due")
    draft = _Draft(title=title, description=description, priority=priority, tags=tag, remind=remind)
    owner = session.required_owner()
    if every or rrule:
        if when is None:
            fail("a recurring task needs --due: when its first occurrence is due")
        local = when.astimezone(zone)
        schedule: dict[str, Any] = {"every": every} if every else {"rrule": rrule}
        schedule |= {"start": f"{local:%Y-%m-%dT%H:%M:%S}", "timeZone": zone.key}
        if interval:
            schedule["interval"] = interval
        kind, spec = crds.RECURRING_TASK, _recurring_spec(draft, owner=owner, schedule=schedule)
    else:
        if interval:
            fail("--interval goes with --every")
        fields = draft.fields(owner) | ({"dueAt": when.isoformat()} if when else {})
        kind, spec = crds.TASK, _validated(resources.TaskSpec, fields).to_wire()
    manifest = {
        "apiVersion": resources.API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": name or slug(title), "namespace": session.cluster.namespace},
        "spec": spec,
    }
    made = session.cluster.create(kind, manifest)
    _said(made, kind=kind, verb="created", output=output)


def _said(body: Body, *, kind: crds.Kind, verb: str, output: str) -> None:
    """What kubectl says of a write (``task.todo.dev/x created``), or the object with -o."""
    if output in ("yaml", "json"):
        click.echo(views.document([body], output="yaml" if output == "yaml" else "json"))
    elif output == "name":
        click.echo(f"{kind.singular}.{resources.GROUP}/{body['metadata']['name']}")
    else:
        click.echo(f"{kind.singular}.{resources.GROUP}/{body['metadata']['name']} {verb}")


def _task_named(session: Session, name: str) -> Body:
    """The Task ``name``; or, for a RecurringTask's name, its current occurrence."""
    task = session.cluster.get(crds.TASK, name)
    if task is not None:
        return task
    series = session.cluster.get(crds.RECURRING_TASK, name)
    if series is None:
        fail(f'no task or recurring task named "{name}" in namespace {session.cluster.namespace}')
    current = (series.get("status") or {}).get("currentTask")
    task = session.cluster.get(crds.TASK, current) if current else None
    if task is None:
        fail(f'the recurring task "{name}" has no current occurrence')
    return task


def _set_completed(session: Session, name: str, *, completed: bool) -> None:
    task = _task_named(session, name)
    task_name = task["metadata"]["name"]
    if bool((task.get("spec") or {}).get("completed")) == completed:
        click.echo(f"task.{resources.GROUP}/{task_name} is {'already' if completed else 'not'} completed")
        return
    patched = session.cluster.patch_spec(crds.TASK, task_name, {"completed": completed})
    _said(patched, kind=crds.TASK, verb="completed" if completed else "reopened", output="table")


_task_name = click.argument("name", shell_complete=_complete_names(crds.TASK, crds.RECURRING_TASK))


@main.command()
@_task_name
@click.pass_obj
def done(session: Session, name: str) -> None:
    """Complete a task (for a recurring task's name: its current occurrence); the next one follows."""
    _set_completed(session, name, completed=True)


@main.command()
@_task_name
@click.pass_obj
def reopen(session: Session, name: str) -> None:
    """Reopen a completed task."""
    _set_completed(session, name, completed=False)


@main.command()
@_task_name
@click.pass_obj
def skip(session: Session, name: str) -> None:
    """Skip the current occurrence of a recurring task (or its series' name): the series moves on,
    nothing is recorded as done, its reminders are cancelled, history keeps it as Skipped."""
    task = _task_named(session, name)
    controller = ownership.controller_of(task, kind=crds.RECURRING_TASK.kind)
    series = None
    if controller is not None:
        found = session.cluster.get(crds.RECURRING_TASK, controller["name"])
        if found is not None and found["metadata"]["uid"] == controller["uid"]:
            series = None if found["metadata"].get("deletionTimestamp") else found
    refusal = tasks.skip_refusal(task, series=series)
    if refusal is not None:
        fail(refusal)
    session.cluster.delete(crds.TASK, task["metadata"]["name"])
    assert controller is not None  # skip_refusal refuses a task no series controls
    click.echo(
        f"task.{resources.GROUP}/{task['metadata']['name']} skipped:"
        f" {controller['name']} moves on to its next occurrence"
    )


@main.command()
@click.argument("reminder", shell_complete=_complete_names(crds.REMINDER))
@click.option("--for", "delay", default="10m", show_default=True, help="how long from now: 10m, 1h, 1d")
@click.pass_obj
def snooze(session: Session, reminder: str, delay: str) -> None:
    """Send a reminder again (or later) this long from now."""
    try:
        span = resources.parse_duration(delay)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--for") from None
    body = session.cluster.get(crds.REMINDER, reminder)
    if body is None:
        fail(f'no reminder named "{reminder}" in namespace {session.cluster.namespace}')
    task_name = ((body.get("spec") or {}).get("taskRef") or {}).get("name", "")
    task = session.cluster.get(crds.TASK, task_name)
    if task is None:
        fail(f'its task "{task_name}" does not exist')
    if (task.get("spec") or {}).get("completed"):
        fail(f'its task "{task_name}" is completed: there is nothing to remind of')
    now = session.now()
    at = (now + span).replace(microsecond=0)
    session.cluster.patch_spec(crds.REMINDER, reminder, {"at": at.isoformat(), "before": None})
    shown = views.when(at, now=now, zone=session.zone)
    click.echo(f"reminder.{resources.GROUP}/{reminder} snoozed until {shown}")


@main.command()
@click.argument("series", shell_complete=_complete_names(crds.RECURRING_TASK))
@click.option("--count", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def preview(session: Session, series: str, count: int, output: str) -> None:
    """The coming occurrences of a recurring task, from its current one (the operator's engine)."""
    body = session.cluster.get(crds.RECURRING_TASK, series)
    if body is None:
        fail(f'no recurring task named "{series}" in namespace {session.cluster.namespace}')
    spec = _validated(resources.RecurringTaskSpec, body.get("spec") or {})
    try:
        schedule = recurrence.Recurrence.compile(occurrences.schedule_spec(spec.schedule))
    except recurrence.ScheduleError as error:
        fail(f"spec.schedule: {error}")
    status = body.get("status") or {}
    if status.get("phase") == "Ended":
        coming: list[datetime] = []
    else:
        start = views.instant(status.get("nextDueAt")) or session.now()
        coming = schedule.upcoming(start, count=count, inclusive=True)
    if output == "json":
        click.echo(json.dumps([moment.isoformat() for moment in coming]))
    elif not coming:
        click.echo("no more occurrences", err=True)
    else:
        now = session.now()
        click.echo("\n".join(views.when(moment, now=now, zone=session.zone) for moment in coming))


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """A completion script for running kubectl-todo directly (kubectl itself uses kubectl_complete-todo)."""
    from click.shell_completion import get_completion_class

    script_class = get_completion_class(shell)
    assert script_class is not None  # one of click's own shells
    click.echo(script_class(main, {}, "kubectl-todo", "_KUBECTL_TODO_COMPLETE").source())


def run() -> NoReturn:
    """The ``kubectl-todo`` entry point: a failure is one line on stderr and exit code 1."""
    try:
        main.main(prog_name="kubectl todo", standalone_mode=False)
    except click.exceptions.Exit as done_:
        sys.exit(done_.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except PluginError as error:
        click.echo(f"Error: {error}", err=True)  # as click says its own
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(0)
