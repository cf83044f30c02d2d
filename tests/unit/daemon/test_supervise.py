"""The supervisor in a real process: READY, watchdog cadence, stall, SIGTERM, SIGHUP.

The daemon runs as a subprocess with ``NOTIFY_SOCKET`` pointing at a bound
datagram socket, as under systemd.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("stall_lane.py")
WATCHDOG_USEC = 600_000  # pings every 0.2 s


def start_daemon(
    notify_socket: Any, flag: Path, prefix: list[str] | None = None
) -> subprocess.Popen[str]:
    """Start the stall lane; ``prefix`` goes before the interpreter options."""
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_socket.path))
    env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen(
        [sys.executable, *(prefix or []), "-X", "faulthandler", str(SCRIPT), str(flag)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_stopping(notify_socket: Any, daemon: subprocess.Popen[str]) -> None:
    """Wait for STOPPING=1 after a stop signal; show the daemon's stacks if none.

    Without STOPPING=1 within 10 s the daemon gets SIGABRT, so faulthandler
    writes every thread's stack into the failure message.
    """
    try:
        notify_socket.wait_for("STOPPING=1", timeout_s=10)
    except AssertionError as err:
        daemon.send_signal(signal.SIGABRT)
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)
        output = daemon.stdout.read() if daemon.stdout else ""
        raise AssertionError(f"{err}\ndaemon output:\n{output}") from None


def finish(daemon: subprocess.Popen[str]) -> str:
    """Kill the daemon if it still runs; return its output."""
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait(5)
    return daemon.stdout.read() if daemon.stdout else ""


def pings_between(notify_socket: Any, start: float, end: float) -> list[float]:
    return [
        t for t, m in notify_socket.messages if m == "WATCHDOG=1" and start <= t < end
    ]


def collect(notify_socket: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        notify_socket.receive(max(0.01, deadline - time.monotonic()))


def test_watchdog_follows_worker_progress(notify_socket: Any, short_tmp: Path) -> None:
    flag = short_tmp / "stall"
    daemon = start_daemon(notify_socket, flag)
    try:
        ready = notify_socket.wait_for("READY=1", timeout_s=10)
        assert "STATUS=lane test idle" in ready.splitlines()

        # Healthy: a ping about every 0.2 s.
        healthy_start = time.monotonic()
        collect(notify_socket, 1.5)
        healthy = pings_between(notify_socket, healthy_start, time.monotonic())
        assert len(healthy) >= 5
        gaps = [b - a for a, b in itertools.pairwise(healthy)]
        assert max(gaps) < 0.5

        # Stalled: after the worker's 0.5 s deadline, no ping at all.
        flag.touch()
        stall_start = time.monotonic()
        collect(notify_socket, 2.0)
        stalled = pings_between(notify_socket, stall_start + 0.8, time.monotonic())
        assert stalled == []
        statuses = [
            m for _, m in notify_socket.messages if m.startswith("STATUS=stalled")
        ]
        assert statuses == ["STATUS=stalled: reader; lane test idle"]

        # Progress again: pings resume.
        flag.unlink()
        resume_start = time.monotonic()
        collect(notify_socket, 1.0)
        assert len(pings_between(notify_socket, resume_start, time.monotonic())) >= 2

        # SIGTERM: STOPPING=1 and a clean exit.
        daemon.send_signal(signal.SIGTERM)
        wait_for_stopping(notify_socket, daemon)
        assert daemon.wait(10) == 0
    finally:
        output = finish(daemon)
    assert "Traceback" not in output


def test_no_watchdog_without_usec(notify_socket: Any, short_tmp: Path) -> None:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_socket.path))
    env.pop("WATCHDOG_USEC", None)
    daemon = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", str(SCRIPT), str(short_tmp / "stall")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        notify_socket.wait_for("READY=1", timeout_s=10)
        collect(notify_socket, 1.0)
        daemon.send_signal(signal.SIGINT)
        wait_for_stopping(notify_socket, daemon)
        assert daemon.wait(10) == 0
    finally:
        finish(daemon)
    assert not [m for _, m in notify_socket.messages if m == "WATCHDOG=1"]


# What nohup does: ignore SIGHUP, then exec the command, which inherits the
# ignored disposition.
NOHUP = (
    "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


@pytest.mark.parametrize("under_nohup", [False, True])
def test_sighup_stops_unless_ignored(
    notify_socket: Any, short_tmp: Path, under_nohup: bool
) -> None:
    # A field engineer's SSH session closing sends SIGHUP to a daemon started
    # by hand. It must lock up and exit as on SIGTERM, not die on the spot,
    # and under nohup it must keep running.
    daemon = start_daemon(
        notify_socket, short_tmp / "stall", prefix=["-c", NOHUP] if under_nohup else []
    )
    try:
        notify_socket.wait_for("READY=1", timeout_s=10)
        daemon.send_signal(signal.SIGHUP)
        if under_nohup:
            collect(notify_socket, 0.5)
            assert daemon.poll() is None
            assert "STOPPING=1" not in [m for _, m in notify_socket.messages]
            daemon.send_signal(signal.SIGTERM)
        wait_for_stopping(notify_socket, daemon)
        assert daemon.wait(10) == 0
    finally:
        output = finish(daemon)
    expected = "SIGTERM" if under_nohup else "SIGHUP"
    assert f"stop requested by {expected}" in output


FAILING_LANE = Path(__file__).with_name("failing_lane_daemon.py")


def test_dead_lane_worker_stops_daemon(
    lane_setup: Any,
    notify_socket: Any,
    start_daemon: Any,
    stop_daemon: Any,
) -> None:
    from edge_gate.store import AUDIT_DB_NAME, AuditLog

    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    daemon = start_daemon([str(FAILING_LANE), str(config_path)], notify_socket)
    try:
        notify_socket.wait_for("READY=1", timeout_s=30)
        lane_setup.reader.present(lane_setup.mrz_lines())
        failed = notify_socket.wait_for("STOPPING=1", timeout_s=20)
        assert daemon.wait(20) == 1
    finally:
        exit_status, output = stop_daemon(daemon)
    assert exit_status == 1

    statuses = [m for _, m in notify_socket.messages if m.startswith("STATUS=")]
    assert "STATUS=failed: worker lane stopped on an error" in statuses
    assert "STATUS=stopping: locking the barrier and closing the lane" in failed
    # The worker's traceback, then the supervisor's reason for the exit.
    assert "worker lane stopped on an error\nTraceback" in output
    assert "RuntimeError: lane core fault" in output
    assert (
        "stopping with exit status 1, so that systemd restarts the lane: worker "
        "lane stopped on an error: RuntimeError('lane core fault')"
    ) in output
    assert "lane runner stopped" in output
    assert "stopped (exit status 1)" in output

    # The stop still closes the audit log with an intact chain. The core
    # raised on the document, so no transaction began and none is recorded.
    with AuditLog(lane_setup.state_dir / AUDIT_DB_NAME) as audit:
        assert audit.verify().is_intact
        assert audit.query(kind="transaction") == []
