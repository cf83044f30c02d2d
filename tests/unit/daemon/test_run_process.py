"""``edge-gate run`` as a process, the way systemd starts it.

The emulated devices stay in the test process; the daemon opens their
pseudo-terminals by path. ``NOTIFY_SOCKET`` points at a bound datagram
socket standing in for systemd.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_gate.store import AUDIT_DB_NAME, AuditLog

# With the default wiring, inputs that read their pull level raise these.
START_ALARMS = {"fire_release", "tamper"}


def run_arguments(config_path: Path) -> list[str]:
    return ["-m", "edge_gate", "run", "--config", str(config_path)]


def wait_for_status(
    field_status: Callable[[Path], dict[str, Any]],
    config_path: Path,
    condition: Callable[[dict[str, Any]], bool],
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Poll the status until ``condition`` is true or ``timeout_s`` passes.

    Returns the last status either way, so the caller's asserts show the
    fields that differ.
    """
    deadline = time.monotonic() + timeout_s
    status = field_status(config_path)
    while not condition(status) and time.monotonic() < deadline:
        time.sleep(0.05)
        status = field_status(config_path)
    return status


def test_ready_status_stop(
    lane_setup: Any,
    notify_socket: Any,
    field_status: Callable[[Path], dict[str, Any]],
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
        status = field_status(config_path)
        assert status["lane_id"] == "lane-1"
        assert {w["name"] for w in status["workers"]} >= {"lane", "document-reader"}

        # The mock pins start at their wired levels, so the lane comes up idle
        # and in service, neither freed by a fire release nor closed by tamper.
        idle = wait_for_status(
            field_status,
            config_path,
            lambda s: s["state"] == "idle" and s["in_service"],
        )
        assert idle["causes"] == []
        assert idle["state"] == "idle"
        assert idle["in_service"]

        # A traveller's document; its number must not reach the journal.
        lane_setup.reader.present(lane_setup.mrz_lines())
        done = wait_for_status(field_status, config_path, lambda s: bool(s["counts"]))
        # The template set has no enrolment, so the transaction rejects it.
        assert done["counts"] == {"rejected": 1}
        assert done["last_transaction"]["reason"].startswith("not_enrolled")
        notify_socket.wait_for("WATCHDOG=1", timeout_s=5)
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

    # The audit store, unlike the journal, keeps the document number.
    with AuditLog(lane_setup.state_dir / AUDIT_DB_NAME, read_only=True) as audit:
        entries = audit.query()
        assert audit.verify().is_intact
    transactions = [e.record for e in entries if e.record.kind == "transaction"]
    assert [r.document_number for r in transactions] == ["C4X7M2Q91"]
    alarms = {a for e in entries for a in e.record.alarms}
    assert alarms & START_ALARMS == set()


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
