"""``todo-operator notify --reminder NAMESPACE/NAME``: send one reminder (a CronJob's or Job's pod).

Settings come from ``TODO_*`` environment variables (the pod gets them from
a Secret): the database, SMTP and retry policy. Exit codes: 0 sent (or
already sent / cancelled: nothing to do), 1 failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re

_REFERENCE = re.compile(
    r"^(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<name>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reminder", required=True, metavar="NAMESPACE/NAME", help="the Reminder to send")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    import psycopg

    from todo_operator import settings_registry
    from todo_operator.operator.settings import load_settings
    from todo_operator.telemetry.process import TelemetryError, configure_process
    from todo_operator.usage import UsageError

    settings_registry.refuse_unknown(os.environ)
    match = _REFERENCE.fullmatch(args.reminder)
    if match is None:
        raise UsageError(f"--reminder must be NAMESPACE/NAME, got {args.reminder!r}")
    try:
        configure_process(service="todo-operator-notify", level=args.log_level)
    except TelemetryError as error:
        raise UsageError(str(error)) from None
    settings = load_settings()
    try:
        return asyncio.run(notify(settings, namespace=match["namespace"], name=match["name"]))
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from error


async def notify(settings: object, *, namespace: str, name: str) -> int:
    from todo_operator import kube
    from todo_operator.clock import SystemClock
    from todo_operator.operator import main, reconciling
    from todo_operator.operator.settings import OperatorSettings
    from todo_operator.store import reminder_rows
    from todo_operator.usage import UsageError

    assert isinstance(settings, OperatorSettings)
    clock = SystemClock()
    pool = main.open_pool(settings)
    await pool.open(wait=True, timeout=30)
    client = kube.client_for(api_url=settings.kube_api_url)
    try:
        row = await reminder_rows.ReminderRows(pool).find(namespace=namespace, name=name)
        if row is None:
            raise UsageError(f"reminder {namespace}/{name} is not recorded in the database")
        delivery = main.build_delivery(settings=settings, pool=pool, clock=clock)
        outcome = await delivery.deliver(uid=row.uid)
        kube_api = kube.Kube(client)
        cluster_events = reconciling.ClusterEvents(
            kube=kube_api, clock=clock, component="todo-operator-notify"
        )
        reminders = main.build_reminders(
            settings=settings, kube_api=kube_api, pool=pool, clock=clock, cluster_events=cluster_events
        )
        try:
            await reminders.report(namespace=namespace, name=name, outcome=outcome)
            await cluster_events.flush()
        except kube.KubeError as error:  # PostgreSQL has the outcome; the operator shows it later
            logging.getLogger(__name__).warning("could not update the Reminder's status: %s", error)
    finally:
        await client.close()
        await pool.close()
    if outcome.result == "Sent":
        print(f"sent {namespace}/{name} (attempt {outcome.attempts}{', late' if outcome.late else ''})")
        return 0
    if outcome.result == "Skipped":
        print(f"nothing to do for {namespace}/{name}: {outcome.reason}")
        return 0
    print(f"failed {namespace}/{name} after {outcome.attempts} attempt(s): {outcome.error}")
    return 1
