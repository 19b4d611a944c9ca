"""``todo-operator demo`` as a person runs it: start, use with kubectl, Ctrl-C, nothing left behind."""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

KUBECTL = shutil.which("kubectl")


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port_run(length: int) -> int:
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


@pytest.mark.skipif(KUBECTL is None, reason="the kubectl binary is not installed on this machine")
def test_demo_starts_serves_kubectl_and_stops_cleanly(tmp_path: pathlib.Path) -> None:
    port = _free_port_run(4)
    state = tmp_path / "demo"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "todo_operator.cli",
            "demo",
            "--with-examples",
            "--port-base",
            str(port),
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        assert "Press Ctrl-C to stop.\n" in lines, "".join(lines)
        assert f"  export KUBECONFIG={state / 'kubeconfig'}\n" in lines

        env = {**os.environ, "KUBECONFIG": str(state / "kubeconfig")}
        listing = ""
        for _ in range(100):  # the operator opens the occurrences within moments
            listing = subprocess.run(
                [str(KUBECTL), "get", "rtask"], env=env, capture_output=True, text=True, check=True
            ).stdout
            if listing.count("Active") == 3:
                break
            time.sleep(0.1)
        assert listing.count("Active") == 3, listing
    finally:
        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=60)
    assert process.returncode == 0, remaining
    assert "stopping ..." in remaining
    assert not _port_in_use(port)
    assert not _port_in_use(port + 1)  # PostgreSQL stopped too
    assert not _port_in_use(port + 2)  # and the SMTP sink
    assert not _port_in_use(port + 3)  # and the Dapr endpoint
    assert "Dapr        http://127.0.0.1:" in "".join(lines)
