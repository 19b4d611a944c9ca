"""``todo-operator demo`` as a person runs it: start, use with kubectl, Ctrl-C, nothing left behind."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from todo_operator.devstack.postgres import free_port

KUBECTL = shutil.which("kubectl")


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port_run(length: int) -> int:
    """A port whose next ``length - 1`` ports are free too (the demo uses consecutive ports)."""
    for _ in range(50):
        base = free_port()
        if base + length <= 65535 and not any(_port_in_use(base + offset) for offset in range(length)):
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
