"""The throw-away PostgreSQL stops the server it started, and never another one; it
serves from a folder of any depth.

A test run whose runner was killed can outlive it. The next run in the same
folder wipes ``.pytest-tmp`` and starts its own server at the same path; the
orphan's ``stop()`` then named a data directory that now belongs to someone
else, and ``pg_ctl stop -m immediate`` shut the new run's server down mid-run.
"""

from __future__ import annotations

import pathlib

import psycopg
import pytest

from todo_devstack import postgres

# Deeper than a Unix socket's path may be (107 bytes on Linux), as a CI workspace can be.
SOCKET_PATH_LIMIT = 107


def deep_folder(base: pathlib.Path) -> pathlib.Path:
    """A folder whose Unix socket path (``.s.PGSQL.<port>`` in it) would pass the limit."""
    folder = base.joinpath(*["a-clone-nested-as-deep-as-a-ci-workspace"] * 3)
    assert len(str(folder / "postgres" / ".s.PGSQL.65535")) > SOCKET_PATH_LIMIT
    return folder


def _serves(server: postgres.ThrowawayPostgres) -> bool:
    try:
        with psycopg.connect(server.dsn(), connect_timeout=5) as connection:
            return connection.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_a_stale_object_does_not_stop_the_server_that_took_its_place(tmp_path: pathlib.Path) -> None:
    orphan = postgres.ThrowawayPostgres(base_dir=tmp_path).start()
    orphan.stop(mode="immediate")
    successor = postgres.ThrowawayPostgres(base_dir=tmp_path).start()  # same data directory
    try:
        orphan.stop(mode="immediate")
        stranger = postgres.ThrowawayPostgres(base_dir=tmp_path, port=0)  # started nothing
        stranger.stop(mode="immediate")
        assert _serves(successor), "an object stopped a server it did not start"
    finally:
        successor.stop(mode="immediate")
    assert not _serves(successor)


def test_stop_leftover_stops_a_server_someone_else_started(tmp_path: pathlib.Path) -> None:
    """What the demo does with the server of a demo killed by SIGKILL."""
    killed_demo = postgres.ThrowawayPostgres(base_dir=tmp_path).start()
    try:
        postgres.ThrowawayPostgres(base_dir=tmp_path, port=0).stop_leftover(mode="fast")
        assert not _serves(killed_demo)
    finally:
        killed_demo.stop(mode="immediate")  # a no-op once stopped: the pid file is gone


@pytest.mark.parametrize("content", ["", "not-a-pid\n"])
def test_an_unreadable_pid_file_names_no_server(tmp_path: pathlib.Path, content: str) -> None:
    server = postgres.ThrowawayPostgres(base_dir=tmp_path, port=0)
    server.data_dir.mkdir(parents=True)
    (server.data_dir / "postmaster.pid").write_text(content)
    server.stop_leftover()  # nothing to stop, and no pg_ctl run that would fail


def test_a_server_in_a_folder_nested_past_the_socket_path_limit_serves(tmp_path: pathlib.Path) -> None:
    """TCP only: there is no Unix socket whose path could be too long."""
    with postgres.ThrowawayPostgres(base_dir=deep_folder(tmp_path) / "postgres") as server:
        assert _serves(server)
        assert not list(server.base_dir.rglob(".s.PGSQL.*")), "no Unix socket anywhere"
