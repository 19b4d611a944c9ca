"""A throw-away PostgreSQL server for the tests and ``todo-operator demo``.

Written here rather than taken from pytest-postgresql because the demo needs
it too (the runtime must not depend on pytest) and because of one trap:
``initdb`` refuses to run as root, and CI runs as root. As root, the data
directory is given to the ``postgres`` user (Debian's package creates it) and
every server binary runs through ``runuser -u postgres``; otherwise they run
directly. The server listens on loopback only, on a free port, with
durability switched off (a throw-away database needs no fsync); a kept demo's
commits still survive its processes being killed (``commits_survive_kill``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import random
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed (the Debian package ``postgresql``)."""


def find_bin_dir() -> pathlib.Path:
    """The folder with ``initdb`` and ``pg_ctl``: $PG_BIN_DIR, Debian's newest, or PATH."""
    if configured := os.environ.get("PG_BIN_DIR"):
        return pathlib.Path(configured)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if debian:
        return pathlib.Path(debian[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return pathlib.Path(on_path).resolve().parent
    raise PostgresUnavailable("no pg_ctl found: install the 'postgresql' package or set PG_BIN_DIR")


def free_port() -> int:
    """A free loopback port below Linux's ephemeral range (32768 and up).

    A port the kernel hands out for ``bind(0)`` lies in the ephemeral range,
    where any outgoing connection may take it before the server binds it.
    """
    rng = random.Random()  # noqa: S311  # spreading test ports, not cryptography
    for _ in range(500):
        port = rng.randrange(20_000, 32_000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port between 20000 and 32000 on 127.0.0.1")


def _let_postgres_traverse(folder: pathlib.Path) -> None:
    """Add the search (x) bit for others on the folders above ``folder``.

    pytest makes its temporary folders 0700; the ``postgres`` user must be able
    to walk through them to reach its data directory. Only the traverse bit
    is added: nothing becomes listable or readable.
    """
    for parent in folder.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@dataclass(kw_only=True)
class ThrowawayPostgres:
    """One PostgreSQL cluster in ``base_dir``; ``start()``/``stop()`` or use as a context manager."""

    base_dir: pathlib.Path
    port: int = field(default_factory=free_port)
    bin_dir: pathlib.Path = field(default_factory=find_bin_dir)
    # A kept demo's database must not lose commits when its processes are killed (F26): with
    # synchronous_commit on, a commit returns once its WAL is written to the kernel (fsync stays
    # off: a power cut is not a demo's fault to survive). Tests throw theirs away: off is faster.
    commits_survive_kill: bool = False
    # The postmaster this object started: stop() stops it and nothing else (see stop()).
    _postmaster: int | None = field(default=None, init=False, repr=False)

    @property
    def data_dir(self) -> pathlib.Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> pathlib.Path:
        return self.base_dir / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, argv: Sequence[str]) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
            )

    def start(self) -> ThrowawayPostgres:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _let_postgres_traverse(self.base_dir)
            shutil.chown(self.base_dir, user="postgres", group="postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                # TCP only: a Unix socket's path may not pass 107 bytes, and a clone in a deep
                # folder (a CI workspace) would put it past that. Every client here uses TCP.
                "-c unix_socket_directories=''",
                "-c fsync=off",
                f"-c synchronous_commit={'on' if self.commits_survive_kill else 'off'}",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "start"]
        )
        self._postmaster = self._running_postmaster()
        return self

    def _running_postmaster(self) -> int | None:
        """The pid on the first line of ``postmaster.pid``: the server running on ``data_dir``."""
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        return int(first_line) if first_line.strip().isdigit() else None

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server this object started, and only that one.

        ``pg_ctl stop`` stops whatever runs on a data directory. A test run whose
        runner was killed can outlive it; when the next run in the same folder
        has wiped ``.pytest-tmp`` and started its own server at the same path,
        the orphan's exit must not stop that server (it did: 56 errors in one
        run). Comparing the pid makes that hold by construction.
        """
        started, self._postmaster = self._postmaster, None
        if started is not None and self._running_postmaster() == started:
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def stop_leftover(self, *, mode: str = "fast") -> None:
        """Stop a server some other process started on ``data_dir`` (a demo killed with SIGKILL)."""
        if self._running_postmaster() is not None:
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def restart(self) -> None:
        """Stop and start again on the same port (clients must reconnect: fault F21)."""
        self.stop()
        self.start()

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create a database (optionally as a copy of ``template``) and return its DSN."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(statement)
        return self.dsn(name)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop(mode="immediate")


@contextlib.contextmanager
def running(base_dir: pathlib.Path) -> Iterator[ThrowawayPostgres]:
    with ThrowawayPostgres(base_dir=base_dir) as server:
        yield server
