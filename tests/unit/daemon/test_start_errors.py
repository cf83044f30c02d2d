"""Settings that name an invalid file or folder stop ``edge-gate run``.

Each one exits with status 2 and one message that names the setting and its
value, before ``READY=1`` and before the lane writes its state folder. A
read-only ``audit.db`` in a writable folder is a store problem instead: it
exits with status 1, and the message states that the file cannot be written.
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

from edge_gate.daemon._lock import LOCK_FILE_NAME
from edge_gate.store import AUDIT_DB_NAME, AuditLog


def write_config(path: Path, setup: Any, **changes: dict[str, Any]) -> None:
    """Write the setup's configuration with the tables in ``changes`` updated."""
    sections = {name: dict(table) for name, table in setup.sections.items()}
    for name, table in changes.items():
        sections[name].update(table)
    dataclasses.replace(setup, sections=sections).write_toml(path)


@pytest.fixture(name="run_to_end")
def run_to_end_fixture(
    notify_socket: Any,
    start_daemon: Callable[..., Any],
    stop_daemon: Callable[..., tuple[int, str]],
) -> Callable[[Path], tuple[int, str]]:
    """Return a function that runs ``edge-gate run`` until it exits.

    The function returns the exit status and stderr. A daemon still running
    after 30 s is stopped, and the test fails with ``TimeoutExpired``.
    """

    def run_to_end(config_path: Path) -> tuple[int, str]:
        arguments = ["-m", "edge_gate", "run", "--config", str(config_path)]
        daemon = start_daemon(arguments, notify_socket)
        try:
            daemon.wait(30)
        finally:
            exit_status, stderr = stop_daemon(daemon)
            daemon.stdout.close()
            daemon.stderr.close()
        return exit_status, stderr

    return run_to_end


def notify_lines(notify_socket: Any) -> list[str]:
    """Return every line the exited daemon sent to the notify socket."""
    lines = []
    while (message := notify_socket.receive(0.2)) is not None:
        lines.extend(message.splitlines())
    return lines


def test_models_dir_without_manifest(
    lane_setup: Any, notify_socket: Any, run_to_end: Callable[[Path], Any]
) -> None:
    empty = lane_setup.work / "no-models"
    empty.mkdir()
    config_path = lane_setup.work / "edge-gate.toml"
    write_config(config_path, lane_setup, daemon={"models_dir": str(empty)})

    exit_status, stderr = run_to_end(config_path)

    assert exit_status == 2, stderr
    assert f'[daemon] models_dir = "{empty}": the folder contains no manifest.json' in (
        stderr
    )
    assert "Traceback" not in stderr
    lines = notify_lines(notify_socket)
    assert "READY=1" not in lines
    assert any(
        line.startswith("STATUS=configuration invalid: [daemon] models_dir")
        for line in lines
    ), lines
    assert not (lane_setup.state_dir / AUDIT_DB_NAME).exists()


@pytest.mark.parametrize(
    ("socket_name", "problem"),
    [
        pytest.param(
            "/proc/edge-gate-test/control.sock",
            "cannot create its folder /proc/edge-gate-test: No such file",
            id="folder-cannot-be-created",
        ),
        pytest.param(
            "x" * 120 + ".sock",
            "a UNIX socket path may have at most 107",
            id="path-too-long",
        ),
        pytest.param("plain-file", "exists and is not a socket", id="file-in-the-way"),
    ],
)
def test_control_socket_path_invalid(
    lane_setup: Any, run_to_end: Callable[[Path], Any], socket_name: str, problem: str
) -> None:
    socket_path = lane_setup.work / socket_name
    (lane_setup.work / "plain-file").write_text("not a socket", encoding="utf-8")
    config_path = lane_setup.work / "edge-gate.toml"
    write_config(config_path, lane_setup, daemon={"control_socket": str(socket_path)})

    exit_status, stderr = run_to_end(config_path)

    assert exit_status == 2, stderr
    assert f'[daemon] control_socket = "{socket_path}": ' in stderr
    assert problem in stderr
    assert "Traceback" not in stderr
    # Checked before the lane starts, so no audit row was written.
    assert not (lane_setup.state_dir / AUDIT_DB_NAME).exists()


def test_state_dir_is_a_file(
    lane_setup: Any, run_to_end: Callable[[Path], Any]
) -> None:
    state_file = lane_setup.work / "state-file"
    state_file.write_text("not a folder", encoding="utf-8")
    config_path = lane_setup.work / "edge-gate.toml"
    write_config(config_path, lane_setup, store={"state_dir": str(state_file)})

    exit_status, stderr = run_to_end(config_path)

    assert exit_status == 2, stderr
    assert f'[store] state_dir = "{state_file}": it is a file, not a folder' in (stderr)
    assert "Errno" not in stderr


def test_state_dir_under_a_file(
    lane_setup: Any, run_to_end: Callable[[Path], Any]
) -> None:
    (lane_setup.work / "state-file").write_text("not a folder", encoding="utf-8")
    state_dir = lane_setup.work / "state-file" / "state"
    config_path = lane_setup.work / "edge-gate.toml"
    write_config(config_path, lane_setup, store={"state_dir": str(state_dir)})

    exit_status, stderr = run_to_end(config_path)

    assert exit_status == 2, stderr
    assert f'[store] state_dir = "{state_dir}": a part of the path is a file' in (
        stderr
    )
    assert "Errno" not in stderr


# Root ignores file modes. As root, the daemon therefore runs in a private
# mount namespace where the path is bind-mounted read-only over itself, and
# the test's own view of the path stays writable.
_READ_ONLY_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1"'


def run_with_read_only(path: Path, config_path: Path) -> tuple[int, str]:
    """Run ``edge-gate run`` to its end while ``path`` cannot be written.

    Returns:
        The exit status and stderr.
    """
    command = [sys.executable, "-m", "edge_gate", "run", "--config", str(config_path)]
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    mode = path.stat().st_mode
    if os.geteuid() == 0:
        unshare = ["unshare", "--mount", "--propagation", "private"]
        probe = subprocess.run([*unshare, "true"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"needs a mount namespace as root: {probe.stderr!r}")
        script = f'{_READ_ONLY_MOUNT} && shift && exec "$@"'
        command = [*unshare, "sh", "-c", script, "sh", str(path), *command]
    else:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        path.chmod(mode)
    return result.returncode, result.stderr


def test_state_dir_read_only(lane_setup: Any) -> None:
    # An audit log from an earlier run, as on a lane that ran before.
    AuditLog(lane_setup.state_dir / AUDIT_DB_NAME).close()
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)

    exit_status, stderr = run_with_read_only(lane_setup.state_dir, config_path)

    assert exit_status == 2, stderr
    setting = f'[store] state_dir = "{lane_setup.state_dir}"'
    assert f"{setting}: cannot create files in the folder" in stderr
    assert "not an audit log" not in stderr


def test_audit_log_file_read_only(lane_setup: Any) -> None:
    audit_path = lane_setup.state_dir / AUDIT_DB_NAME
    AuditLog(audit_path).close()
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)

    exit_status, stderr = run_with_read_only(audit_path, config_path)

    # The folder is writable, so the start gets as far as the audit log.
    assert exit_status == 1, stderr
    assert f"audit log {audit_path} cannot be written" in stderr
    assert "not an audit log" not in stderr


def test_lock_file_read_only(lane_setup: Any) -> None:
    lock_path = lane_setup.state_dir / LOCK_FILE_NAME
    lock_path.write_text("", encoding="ascii")
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)

    exit_status, stderr = run_with_read_only(lock_path, config_path)

    assert exit_status == 2, stderr
    setting = f'[store] state_dir = "{lane_setup.state_dir}"'
    assert f"{setting}: cannot open the lock file {lock_path}" in stderr
    assert "audit log head at start" not in stderr


def test_control_socket_dangling_symlink(
    lane_setup: Any, run_to_end: Callable[[Path], Any]
) -> None:
    socket_path = lane_setup.work / "run" / "control.sock"
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.symlink_to(lane_setup.work / "gone.sock")
    config_path = lane_setup.work / "edge-gate.toml"
    write_config(config_path, lane_setup, daemon={"control_socket": str(socket_path)})

    exit_status, stderr = run_to_end(config_path)

    assert exit_status == 2, stderr
    assert f'[daemon] control_socket = "{socket_path}": ' in stderr
    assert "is a symbolic link to" in stderr
    assert "dangling" in stderr
    assert "Traceback" not in stderr
    # Checked before the lane starts, so no audit row was written.
    assert not (lane_setup.state_dir / AUDIT_DB_NAME).exists()
    assert socket_path.is_symlink()


def test_control_socket_symlink_to_live_server(
    lane_setup: Any, run_to_end: Callable[[Path], Any]
) -> None:
    live_path = lane_setup.work / "live.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(live_path))
    server.listen()
    socket_path = lane_setup.work / "run" / "control.sock"
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.symlink_to(live_path)
    config_path = lane_setup.work / "edge-gate.toml"
    write_config(config_path, lane_setup, daemon={"control_socket": str(socket_path)})

    try:
        exit_status, stderr = run_to_end(config_path)
    finally:
        server.close()

    assert exit_status == 1, stderr
    assert "another edge-gate daemon is listening on control socket" in stderr
    assert not (lane_setup.state_dir / AUDIT_DB_NAME).exists()
    assert socket_path.is_symlink()
