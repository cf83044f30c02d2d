"""``edge-gate run`` as a process, the way systemd starts it.

The emulated devices stay in the test process; the daemon opens their
pseudo-terminals by path. ``NOTIFY_SOCKET`` points at a bound datagram
socket standing in for systemd.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_gate.cli import main as cli_main


def run_arguments(config_path: Path) -> list[str]:
    return ["-m", "edge_gate", "run", "--config", str(config_path)]


def test_ready_status_stop(
    lane_setup: Any,
    notify_socket: Any,
    capsys: Any,
    start_daemon: Callable[..., Any],
    stop_daemon: Callable[..., tuple[int, str]],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    started = time.monotonic()
    daemon = start_daemon(run_arguments(config_path), notify_socket)
    try:
        ready = notify_socket.wait_for("READY=1", timeout_s=30)
        ready_s = time.monotonic() - started
        assert any(line.startswith("STATUS=lane lane-1") for line in ready.splitlines())

        # The field command reaches the daemon over its control socket.
        assert cli_main(["status", "--json", "--config", str(config_path)]) in (0, 1)
        status = json.loads(capsys.readouterr().out)
        assert status["lane_id"] == "lane-1"
        assert {w["name"] for w in status["workers"]} >= {"lane", "document-reader"}

        # A traveller's document; its number must not reach the journal.
        lane_setup.reader.present(lane_setup.mrz_lines())
        notify_socket.wait_for("WATCHDOG=1", timeout_s=5)
        time.sleep(1.0)
        daemon.send_signal(signal.SIGTERM)
        stopping = notify_socket.wait_for("STOPPING=1", timeout_s=10)
        assert "STATUS=stopping: locking the barrier" in stopping
    finally:
        # On a failure above this raises too, with the daemon's stacks.
        exit_status, stderr = stop_daemon(daemon)
    assert exit_status == 0, stderr
    assert "C4X7M2Q91" not in stderr
    assert "NGUYEN" not in stderr
    assert "Traceback" not in stderr
    assert "lane lane-1 stopped" in stderr
    # Generous bound for a shared CI machine; bench/bench_daemon.py measures.
    assert ready_s < 30


def test_invalid_config_lists_every_problem(
    short_tmp: Path, notify_socket: Any, start_daemon: Callable[..., Any]
) -> None:
    config_path = short_tmp / "bad.toml"
    config_path.write_text(
        "[daemon]\nworker_stall_s = 0.01\nlog_level = 'LOUD'\n[audit]\nretention = 5\n",
        encoding="utf-8",
    )
    daemon = start_daemon(run_arguments(config_path), notify_socket)
    exit_status = daemon.wait(30)
    stderr = daemon.stderr.read()
    assert exit_status == 2
    assert "3 problem(s)" in stderr
    assert "[daemon] worker_stall_s = 0.01: must be at least 1.0" in stderr
    assert '[daemon] log_level = "LOUD": must be one of' in stderr
    assert "[audit] retention: unknown key" in stderr
    status = notify_socket.wait_for(f"STATUS=configuration invalid: {config_path}", 5)
    assert "READY=1" not in status
