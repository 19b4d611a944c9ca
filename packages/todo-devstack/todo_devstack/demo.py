"""``todo-operator demo``: the whole system on one machine, no cluster, no Docker.

Starts, on loopback, on five consecutive ports from ``port_base``: the
Kubernetes API emulator with our CRDs (+0), a throw-away PostgreSQL, migrated
(+1), an SMTP sink that saves each e-mail as an ``.eml`` file and prints a
line about it (+2), a Dapr sidecar double that logs every CloudEvent the
outbox relay publishes and delivers it to the REST API's subscriptions, with
the app token the API checks, so the activity feed fills (+3), and the REST
API (+4); and the operator, with inline
reminder delivery because there is no CronJob controller here. It writes a
kubeconfig and an ``env`` file (``KUBECONFIG``, ``API_URL`` and a demo
user's ``TOKEN``, ready for ``source``) into the state directory and prints
what to type next. Ctrl-C stops everything and leaves no process behind.

Each run starts from nothing unless ``keep`` is set. Then it reuses the
database, the e-mails and the emulated cluster's objects, however the last
run ended, Ctrl-C or SIGKILL (fault F26). The objects are kept verbatim,
uids included, because the rows in PostgreSQL and the occurrences' owner
references point at the uids — re-creating them through the API would give
them new ones. They are kept in a write-ahead journal, ``cluster.journal``
(``apiserver/journal.py``): each write is in it before the emulator answers,
so before the operator can act on it in the database; kept objects are
never behind the database. A kept state that cannot be trusted — a journal
that does not read back whole, a database without its objects' journal or
the other way round, the state of an older demo that saved the objects only
when it stopped cleanly — is refused with the reason before anything starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import pathlib
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from typing import Any

import httpx2 as httpx
import jwt
import psycopg
import yaml
from pydantic import SecretStr

import kube_emulator as apiserver
from kube_emulator import journal, loopthread
from todo_devstack import postgres
from todo_devstack.dapr import App, DaprDouble, DaprThread
from todo_devstack.operator_thread import OperatorThread
from todo_devstack.smtp import SmtpSink
from todo_operator.api import server as api_server
from todo_operator.api.settings import ApiSettings
from todo_operator.clock import SystemClock
from todo_operator.domain import crds, resources
from todo_operator.events.relay import RelaySettings
from todo_operator.operator.settings import OperatorSettings
from todo_operator.store import schema

# The repository's examples: the local stack runs from a checkout (packages/todo-devstack/todo_devstack/).
EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"
PORTS = 5  # API server, PostgreSQL, SMTP sink, Dapr endpoint, REST API
DEMO_USER = "alice@example.com"
AUDIENCE = "todo-api"  # the REST API's default audience
TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600  # a demo runs for days; a token that expires mid-way confuses
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NAMESPACE = "default"

Json = dict[str, Any]


def _log_events(double: DaprDouble) -> None:
    double.log_events = True


# --- the examples ---------------------------------------------------------------------------------


def _example_documents(folder: pathlib.Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield document


def _as_applied(document: Json, *, namespace: str) -> Json:
    """The document with the annotation ``kubectl apply`` would have put on it.

    Without it, a later ``kubectl apply -f examples/`` warns about every object
    (and cannot compute which fields were removed from the file).
    """
    applied = copy.deepcopy(document)
    metadata = applied.setdefault("metadata", {})
    metadata.setdefault("namespace", namespace)
    metadata["annotations"] = {**metadata.get("annotations", {})}
    # kubectl records the object as it was given, with the namespace filled in and without this annotation.
    metadata["annotations"][LAST_APPLIED] = json.dumps(applied, separators=(",", ":")) + "\n"
    return applied


def apply_examples(api_url: str, *, namespace: str = NAMESPACE, folder: pathlib.Path = EXAMPLES) -> list[str]:
    """Create every object in ``examples/`` as ``kubectl apply`` would; return ``kind/name`` of each."""
    created = []
    plurals = {kind.kind: kind.plural for kind in crds.KINDS}
    with httpx.Client(base_url=api_url, timeout=10) as client:
        for document in _example_documents(folder):
            plural = plurals[document["kind"]]
            response = client.post(
                f"/apis/{resources.API_VERSION}/namespaces/{namespace}/{plural}",
                json=_as_applied(document, namespace=namespace),
            )
            if response.status_code >= 400:
                raise RuntimeError(
                    f"examples: {document['metadata']['name']}: {response.json().get('message')}"
                )
            created.append(f"{document['kind'].lower()}/{document['metadata']['name']}")
    return created


# --- the emulated cluster's objects, kept between runs ----------------------------------------------

JOURNAL = "cluster.journal"
OLD_SNAPSHOT = "cluster.json"  # what demos before the journal saved, on a clean stop only
AFRESH = (
    "to start afresh, run the demo without --keep (make demo):"
    " it removes the kept database, e-mails and objects"
)


def _kept_objects(state_dir: pathlib.Path) -> journal.Journal:
    """The objects' journal, judged with the rest of what is kept (raises :class:`journal.Untrusted`)."""
    path = state_dir / JOURNAL
    database_kept = (state_dir / "postgres" / "data" / "PG_VERSION").exists()
    if (state_dir / OLD_SNAPSHOT).exists() and not path.exists():
        raise journal.Untrusted(
            f"{state_dir} was kept by an older demo, which saved the objects only when it stopped cleanly:"
            f" whether they are as recent as the database cannot be known; {AFRESH}"
        )
    if database_kept and not path.exists():
        raise journal.Untrusted(
            f"the database in {state_dir} is kept but the objects' journal {path} is missing:"
            f" the objects would start from nothing, behind the database; {AFRESH}"
        )
    if path.exists() and not database_kept:
        raise journal.Untrusted(
            f"the objects' journal {path} is kept but the database is missing: the objects would be"
            f" ahead of a database that knows nothing of them; {AFRESH}"
        )
    try:
        return journal.Journal.open(path)
    except journal.Untrusted as error:
        raise journal.Untrusted(f"{error}; {AFRESH}") from None


def _describe_kept(kept: journal.Journal) -> list[str]:
    restored = kept.restored
    lines = [f"{restored.count if restored else 0} object(s)"]
    if kept.saved is not None and kept.saved.torn_tail:
        lines.append("dropped the last write, cut short by a crash before it was answered")
    for (group, plural), count in sorted(restored.left_out.items() if restored else ()):
        lines.append(f"left out {count} {plural}{'.' + group if group else ''}: no longer served")
    return lines


# --- the REST API ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _serve_rest_api(
    settings: ApiSettings, *, database_url: str, kube_api_url: str, port: int
) -> AsyncIterator[str]:
    """``todo-operator api``'s server (``api.server.serve``) for the duration of the block."""
    started = threading.Event()
    stop = asyncio.Event()
    serving = asyncio.create_task(
        api_server.serve(
            settings,
            database_url=database_url,
            kube_api_url=kube_api_url,
            clock=SystemClock(),
            host="127.0.0.1",
            port=port,
            started=started,
            stop=stop,
        )
    )
    while not started.is_set():
        if serving.done():
            await serving  # raises what kept it from starting
            raise RuntimeError("the REST API stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await serving


class RestApiThread:
    """The REST API in its own thread and event loop (uvicorn must not share the operator's)."""

    def __init__(self, settings: ApiSettings, *, database_url: str, kube_api_url: str, port: int) -> None:
        self._thread = loopthread.LoopThread(
            name="demo-rest-api",
            serve=lambda: _serve_rest_api(
                settings, database_url=database_url, kube_api_url=kube_api_url, port=port
            ),
        )

    @property
    def url(self) -> str:
        return self._thread.served

    def __enter__(self) -> RestApiThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.stop()


def demo_token(secret: str, *, user: str = DEMO_USER) -> str:
    """An HS256 bearer token the demo's REST API accepts, for ``user``, valid for 30 days."""
    issued = int(time.time())
    claims = {"sub": user, "aud": AUDIENCE, "iat": issued, "exp": issued + TOKEN_LIFETIME_SECONDS}
    return jwt.encode(claims, secret, algorithm="HS256")


# --- the state directory --------------------------------------------------------------------------


def _check_ports_free(port_base: int) -> None:
    """Fail before starting anything, naming the port, rather than half-way with a stack trace."""
    for port in range(port_base, port_base + PORTS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the servers bind: a previous run's connections lingering in TIME_WAIT do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                probe.listen()
            except OSError:
                raise OSError(
                    f"port {port} on 127.0.0.1 is in use (the demo needs {port_base}-{port_base + PORTS - 1};"
                    " choose another --port-base)"
                ) from None


def _stop_leftover_postgres(base_dir: pathlib.Path) -> None:
    """Stop the PostgreSQL of a demo that was killed (SIGKILL) before it could stop it itself."""
    if (base_dir / "data" / "postmaster.pid").exists():
        with contextlib.suppress(RuntimeError):  # a stale pid file: nothing runs, pg_ctl start copes
            postgres.ThrowawayPostgres(base_dir=base_dir, port=0).stop_leftover(mode="fast")


def _forget(state_dir: pathlib.Path) -> None:
    """Remove what an earlier run left, and only that: the state directory may hold other files."""
    shutil.rmtree(state_dir / "postgres", ignore_errors=True)
    for saved in (state_dir / "mail").glob("*.eml"):
        saved.unlink()
    for name in (JOURNAL, f"{JOURNAL}.tmp", OLD_SNAPSHOT, "jwt-secret"):
        (state_dir / name).unlink(missing_ok=True)


def _jwt_secret(state_dir: pathlib.Path) -> str:
    """The REST API's signing secret: random, and kept with the state so kept tokens stay valid."""
    path = state_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret


def _ensure_database(database: postgres.ThrowawayPostgres, name: str) -> str:
    with psycopg.connect(database.dsn(), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return database.dsn(name) if exists else database.create_database(name)


def _write_env(path: pathlib.Path, *, kubeconfig: pathlib.Path, api_url: str, token: str) -> list[str]:
    lines = [
        f"export KUBECONFIG={kubeconfig}",
        f"export API_URL={api_url}/api/v1",
        f"export TOKEN={token}",
        # `kubectl todo`: kubectl finds the plugin on PATH (it is installed beside this Python),
        # and the plugin takes the demo user as who you are.
        f"export PATH={pathlib.Path(sys.executable).parent}:$PATH",
        f"export KUBECTL_TODO_OWNER={DEMO_USER}",
    ]
    path.write_text("".join(f"{line}\n" for line in lines))
    path.chmod(0o600)  # it holds a bearer token
    return lines


def _shown(path: pathlib.Path) -> str:
    """``path`` relative to the working directory when below it (what a person would type)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(pathlib.Path.cwd()))
    return str(path)


def next_steps(*, env_file: pathlib.Path, env_lines: list[str], mail: pathlib.Path, database_url: str) -> str:
    return "\n".join(
        [
            "todo-operator demo is running. In another terminal:",
            "",
            f"  source {env_file}",
            "",
            "which sets (as you may type instead):",
            "",
            *(f"  {line}" for line in env_lines),
            "",
            "then, with kubectl:",
            "",
            f"  kubectl apply -f {_shown(EXAMPLES / 'try-a-reminder.yaml')}   # an e-mail within two minutes",
            "  kubectl get todos",
            f"  kubectl todo ls                      # your tasks, as {DEMO_USER}; kubectl todo --help",
            "",
            f"or with curl, as {DEMO_USER} (the token is valid for 30 days):",
            "",
            '  curl -s "$API_URL/tasks" -H "Authorization: Bearer $TOKEN"',
            '  curl -s "$API_URL/activity" -H "Authorization: Bearer $TOKEN"   # what happened, newest first',
            "",
            f"E-mails land in {mail}/ (a line here for each); each CloudEvent published is logged here.",
            f"PostgreSQL: psql {database_url}",
            "",
            "Press Ctrl-C to stop.",
        ]
    )


def run(
    *,
    state_dir: pathlib.Path,
    port_base: int,
    with_examples: bool,
    keep: bool = False,
    say: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Run until ``stop`` is set or SIGINT, SIGTERM or SIGHUP arrives."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        # SIGHUP too: closing the terminal must stop PostgreSQL, which runs as a process of its own.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda *_: stop.set())
    state_dir = state_dir.resolve()
    _stop_leftover_postgres(state_dir / "postgres")
    _check_ports_free(port_base)
    if not keep:
        _forget(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    mail = state_dir / "mail"
    objects = _kept_objects(state_dir)

    def tell_mail(message: EmailMessage, saved_as: pathlib.Path | None) -> None:
        say(f"e-mail      to {message['To']}: {message['Subject']}  ({saved_as})")

    # Dapr's app API token (APP_API_TOKEN): the double sends it with each delivery and the REST API
    # checks it. A new one each run: nothing outside this process needs to know it.
    app_token = secrets.token_urlsafe(32)
    rest_port = port_base + 4
    with (
        apiserver.ApiServerThread(crds=crds.all_crds(), port=port_base, journal=objects) as api,
        postgres.ThrowawayPostgres(
            base_dir=state_dir / "postgres", port=port_base + 1, commits_survive_kill=keep
        ) as database,
        SmtpSink(folder=mail, port=port_base + 2, on_message=tell_mail) as smtp,
        # The sidecar reads the API's subscriptions once the API listens, as daprd waits for its app;
        # what the relay publishes before that is delivered then.
        DaprThread(port=port_base + 3, app=App(url=f"http://127.0.0.1:{rest_port}", token=app_token)) as dapr,
    ):
        database_url = _ensure_database(database, "todo")
        schema.migrate_up(database_url)
        kubeconfig = api.write_kubeconfig(state_dir / "kubeconfig")
        settings = OperatorSettings(
            database_url=database_url,
            kube_api_url=api.url,
            # No CronJob controller here: the operator sends reminders itself, into the sink.
            reminder_delivery="inline",
            smtp_port=smtp.port,
            smtp_from="todo-operator@demo.local",
        )
        # The relay publishes every recorded change to the Dapr double, which logs each CloudEvent
        # and delivers it to the REST API's activity consumer.
        dapr.call(_log_events)
        publishing = RelaySettings(database_url=database_url, dapr_http_endpoint=dapr.url)
        secret = _jwt_secret(state_dir)
        # The demo token lives 30 days, longer than the API's default limit (a day): raised here only.
        # The Dapr app token the double sends: /events/* takes deliveries from it and from nobody else.
        rest_settings = ApiSettings(
            namespace=NAMESPACE,
            jwt_secret=SecretStr(secret),
            jwks_url=None,
            issuer=None,
            audience=AUDIENCE,
            max_token_lifetime_seconds=TOKEN_LIFETIME_SECONDS,
            dapr_app_token=SecretStr(app_token),
            # The page's one-click sign-in as the demo's user (no issuer runs here).
            web_insecure_sign_in_as=DEMO_USER,
        )
        try:
            with (
                OperatorThread(settings, relay_settings=publishing),
                RestApiThread(
                    rest_settings, database_url=database_url, kube_api_url=api.url, port=rest_port
                ) as rest,
            ):
                say(f"API server  {api.url}")
                say(f"PostgreSQL  {database_url}")
                say(f"SMTP sink   127.0.0.1:{smtp.port}, e-mails saved in {mail}")
                say(f"Dapr        {dapr.url} (each CloudEvent published is logged and delivered to the API)")
                say(f"REST API    {rest.url}/api/v1 (OpenAPI: {rest.url}/docs)")
                say(f"Web page    {rest.url}/ (one click signs you in as {DEMO_USER})")
                if keep:
                    kept, *remarks = _describe_kept(objects)
                    say(f"kept        {kept} and the database from {state_dir}")
                    for remark in remarks:
                        say(f"            {remark}")
                if with_examples:
                    for created in apply_examples(api.url):
                        say(f"applied     {created}")
                env_file = state_dir / "env"
                env_lines = _write_env(
                    env_file, kubeconfig=kubeconfig, api_url=rest.url, token=demo_token(secret)
                )
                say("")
                say(next_steps(env_file=env_file, env_lines=env_lines, mail=mail, database_url=database_url))
                stop.wait()
                say("stopping ...")
        finally:
            # A clean shutdown (not the context's "immediate" one) so that a kept database needs no recovery.
            with contextlib.suppress(RuntimeError):
                database.stop(mode="fast")
