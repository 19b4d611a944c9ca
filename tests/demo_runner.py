"""``todo-operator demo`` as a subprocess, run the way a person runs it (for test_demo and test_readme).

The demo is a real process: started with the CLI, read through a pipe,
stopped with SIGINT. Its output is drained by a thread all the time — the
Dapr endpoint logs every CloudEvent, and a full pipe would block the demo's
logging and with it the operator — and kept for assertions and for failure
messages.
"""

from __future__ import annotations

import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import TracebackType

from tests import ROOT

READY = "Press Ctrl-C to stop."
PORTS = 5  # API server, PostgreSQL, SMTP sink, Dapr endpoint, REST API


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_run(length: int = PORTS) -> int:
    """Consecutive free ports below Linux's ephemeral range (32768 and up).

    The demo binds a run of consecutive ports; in the ephemeral range any of
    them may be handed to an outgoing connection between the check and the bind.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 32_000)
        if all(_bindable(base + offset) for offset in range(length)):
            return base
    raise AssertionError("no run of free ports found")


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (PostgreSQL's name its data directory)."""
    found = []
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended while we looked
            continue
        line = " ".join(part.decode(errors="replace") for part in argv if part)
        if text in line and cmdline.parent.name != str(os.getpid()):
            found.append(f"{cmdline.parent.name}: {line}")
    return found


def assert_nothing_left(*, state_dir: pathlib.Path, port_base: int) -> None:
    in_use = [port for port in range(port_base, port_base + PORTS) if port_in_use(port)]
    assert not in_use, f"ports still served after the demo stopped: {in_use}"
    assert not (state_dir / "postgres" / "data" / "postmaster.pid").exists(), "PostgreSQL still running"
    left = processes_mentioning(str(state_dir))
    assert not left, f"processes left behind: {left}"


def todo_operator_command() -> list[str]:
    """``todo-operator`` as installed beside this interpreter (what ``make demo`` runs)."""
    script = pathlib.Path(sys.executable).parent / "todo-operator"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "todo_operator"]


def demo_environment(**extra: str) -> dict[str, str]:
    """This environment without the settings a developer's shell may hold (they would leak into the demo)."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TODO_", "KUBECTL_TODO_")) and name not in {"KUBECONFIG", "API_URL", "TOKEN"}
    }
    return {**kept, **extra}


class Demo:
    def __init__(
        self,
        *,
        state_dir: pathlib.Path,
        port_base: int,
        args: Sequence[str] = (),
        cwd: pathlib.Path = ROOT,
    ) -> None:
        self.state_dir = state_dir
        self.port_base = port_base
        self._argv = [
            *todo_operator_command(),
            "demo",
            "--port-base",
            str(port_base),
            "--state-dir",
            str(state_dir),
            *args,
        ]
        self._cwd = cwd
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._closed = False  # the process closed its output (it ended)
        self.returncode: int | None = None

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    def env_file(self) -> dict[str, str]:
        """What the demo's ``env`` file exports, by name."""
        values = {}
        for line in (self.state_dir / "env").read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = value
        return values

    def _drain(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for(self, text: str, *, timeout: float = 90.0) -> None:
        """Until ``text`` appears in the output (fails if the demo ends first or the time runs out)."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: text in "".join(self._lines) or self._closed, timeout=timeout
            )
            output = "".join(self._lines)
        assert found, f"{text!r} not in the demo's output:\n{output}"
        assert text in output, f"the demo ended before printing {text!r}:\n{output}"

    def start(self) -> Demo:
        self._process = subprocess.Popen(
            self._argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self._cwd,
            env=demo_environment(),
        )
        self._reader = threading.Thread(target=self._drain, name="demo-output", daemon=True)
        self._reader.start()
        try:
            self.wait_for(READY)
        except BaseException:
            self.stop()  # a demo that did not come up must not outlive the test either
            raise
        return self

    def stop(self) -> str:
        """Ctrl-C, as a person stops it; returns the whole output."""
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self.returncode = self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self.returncode = self._process.wait()
            raise AssertionError(f"the demo did not stop within 60 s of SIGINT:\n{self.output}") from None
        assert self._reader is not None
        self._reader.join(timeout=10)
        return self.output

    def kill(self) -> None:
        """SIGKILL, as a crash does: nothing stops cleanly (PostgreSQL, a process of its own, stays up)."""
        assert self._process is not None
        self._process.kill()
        self.returncode = self._process.wait(timeout=60)
        assert self._reader is not None
        self._reader.join(timeout=10)

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None and self.returncode is None:
            self.stop()
