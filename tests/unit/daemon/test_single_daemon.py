"""One lane daemon per state folder and per control socket folder.

A second ``edge-gate run`` beside a running one must stop before it opens
the audit log, the GPIO or the devices, and must leave the first daemon's
control socket in place.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_gate.config import load_config
from edge_gate.daemon import ControlServer, EventHub, LaneRunner, request
from edge_gate.daemon._lock import LOCK_FILE_NAME, DaemonLock
from edge_gate.daemon._main import run_lane
from edge_gate.daemon._notify import Notifier
from edge_gate.daemon._supervise import StopRequest
from edge_gate.errors import DaemonRunningError


def run_second_daemon(config_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``edge-gate run`` to its end, without the test's notify socket."""
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.run(
        [sys.executable, "-m", "edge_gate", "run", "--config", str(config_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_config(path: Path, setup: Any, **daemon: Any) -> None:
    """Write the setup's configuration with ``daemon`` keys changed."""
    sections = {name: dict(table) for name, table in setup.sections.items()}
    sections["daemon"].update(daemon)
    dataclasses.replace(setup, sections=sections).write_toml(path)


def test_second_daemon_stops_at_once(
    lane_setup: Any,
    notify_socket: Any,
    field_status: Callable[[Path], dict[str, Any]],
    start_daemon: Callable[..., Any],
    stop_daemon: Callable[..., tuple[int, str]],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    socket_path = Path(lane_setup.sections["daemon"]["control_socket"])
    # The same state folder behind another control socket.
    other_socket = lane_setup.work / "run2" / "control.sock"
    other_config_path = lane_setup.work / "other-socket.toml"
    write_config(other_config_path, lane_setup, control_socket=str(other_socket))
    # Another state folder, and a socket beside the first one.
    beside_socket = socket_path.parent / "beside.sock"
    beside_config_path = lane_setup.work / "beside.toml"
    beside_state = lane_setup.work / "state-beside"
    beside_state.mkdir()
    sections = {name: dict(table) for name, table in lane_setup.sections.items()}
    sections["daemon"]["control_socket"] = str(beside_socket)
    sections["store"]["state_dir"] = str(beside_state)
    dataclasses.replace(lane_setup, sections=sections).write_toml(beside_config_path)

    daemon = start_daemon(
        ["-m", "edge_gate", "run", "--config", str(config_path)], notify_socket
    )
    try:
        notify_socket.wait_for("READY=1", timeout_s=30)

        # The same configuration: the live control socket stops the start.
        same = run_second_daemon(config_path)
        assert same.returncode == 1, same.stderr
        assert "another edge-gate daemon is listening on control socket" in (
            same.stderr
        )
        assert str(socket_path) in same.stderr
        assert "audit log head at start" not in same.stderr
        assert socket_path.is_socket()
        assert field_status(config_path)["state"] != "stopped"

        # Another socket on the same state folder: the lock stops the start.
        other = run_second_daemon(other_config_path)
        assert other.returncode == 1, other.stderr
        assert f"another edge-gate daemon (pid {daemon.pid}) is running" in (
            other.stderr
        )
        assert str(lane_setup.state_dir) in other.stderr
        assert "audit log head at start" not in other.stderr
        assert not other_socket.exists()
        assert field_status(config_path)["state"] != "stopped"

        # Another state folder, with a socket in the same folder: the runtime
        # folder's lock stops the start, before the audit spool is read.
        beside = run_second_daemon(beside_config_path)
        assert beside.returncode == 1, beside.stderr
        assert f"another edge-gate daemon (pid {daemon.pid}) uses the folder" in (
            beside.stderr
        )
        assert str(socket_path.parent / LOCK_FILE_NAME) in beside.stderr
        assert "audit log head at start" not in beside.stderr
        assert not beside_socket.exists()
        assert field_status(config_path)["state"] != "stopped"
    finally:
        exit_status, stderr = stop_daemon(daemon)
    assert exit_status == 0, stderr
    assert not socket_path.exists()


def test_runner_rejects_locked_state_folder(
    lane: Any, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    second = LaneRunner(lane.config, pin_factory=lane.pins)
    try:
        with pytest.raises(DaemonRunningError, match="is running on state folder"):
            second.start()
        # The second runner opened nothing: no audit log, no GPIO.
        assert second.audit is None
        assert second.turnstile is None
    finally:
        second.stop()
    assert lane.idle_in_service()


def test_lock_released_at_stop(lane_setup: Any, start_lane: Any) -> None:
    first = start_lane(lane_setup)
    first.close()
    second = start_lane(lane_setup)
    assert second.runner.audit is not None


def test_lock_file_left_by_crash_is_taken(lane_setup: Any, start_lane: Any) -> None:
    lock_path = lane_setup.state_dir / LOCK_FILE_NAME
    lock_path.write_text("4242\n", encoding="ascii")
    start_lane(lane_setup)
    assert lock_path.read_text(encoding="ascii") == f"{os.getpid()}\n"


def test_live_control_socket_kept(short_tmp: Path) -> None:
    path = short_tmp / "control.sock"
    first = ControlServer(path, {"status": lambda r: "first"}, EventHub())
    first.start()
    try:
        with pytest.raises(DaemonRunningError, match=str(path)):
            ControlServer(path, {"status": lambda r: "second"}, EventHub())
        assert request(path, {"command": "status"}) == "first"
    finally:
        first.stop()


def test_stop_keeps_socket_of_another_server(short_tmp: Path) -> None:
    path = short_tmp / "control.sock"
    control = ControlServer(path, {"status": lambda r: "ok"}, EventHub())
    control.start()
    # Another server replaced the file while this one ran.
    path.unlink()
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        other.bind(str(path))
        other.listen()
        control.stop()
        assert path.is_socket()
    finally:
        other.close()


def test_start_keeps_socket_before_listen(lane_setup: Any) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    config = load_config(config_path)
    socket_path = Path(config.daemon.control_socket)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    # Another daemon holds the state folder's lock and has bound its socket, but
    # does not listen yet, so a connection to it is refused.
    first_lock = DaemonLock(lane_setup.state_dir)
    first_socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        first_socket.bind(str(socket_path))
        bound_inode = socket_path.stat().st_ino

        exit_status = run_lane(config, Notifier(), StopRequest())

        assert exit_status == 1
        assert socket_path.is_socket()
        assert socket_path.stat().st_ino == bound_inode
    finally:
        first_socket.close()
        first_lock.close()
