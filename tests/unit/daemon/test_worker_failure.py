"""A lane worker that stopped or stalled takes the lane out of service.

The lane runner runs in-process on the rig's emulators. The faults come in
through one real component each: the lane core raising on a document (a
bug in the core), and a template store read that blocks only in the
housekeeping thread (as a SQLite read on a busy lock would). The worker
threads, the progress monitor, the status, the control socket and
``edge-gate status`` are the real ones. An unexpected error from an audit
write, by contrast, keeps the lane thread and the record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_gate.cli import main as cli_main

POISON = "record text that cannot be encoded"
FAULT = "lane core fault"


def fail_next_transaction_write(monkeypatch: pytest.MonkeyPatch, audit: Any) -> None:
    """Make the next transaction record's write raise ValueError, once."""
    real_append = audit.append
    failed = threading.Event()

    def append(record: Any) -> Any:
        if record.kind == "transaction" and not failed.is_set():
            failed.set()
            raise ValueError(POISON)
        return real_append(record)

    monkeypatch.setattr(audit, "append", append)


def kill_lane_worker(running: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Present a document that the lane core raises on, which ends the lane thread."""
    from edge_gate.gate import DocumentRead, Lane

    real_handle = Lane.handle

    def handle(self: Any, event: Any, now_s: float) -> Any:
        if isinstance(event, DocumentRead):
            raise RuntimeError(FAULT)
        return real_handle(self, event, now_s)

    monkeypatch.setattr(Lane, "handle", handle)
    running.setup.reader.present(running.setup.mrz_lines())


@pytest.fixture
def serve_control(lane_setup: Any) -> Iterator[Callable[[Any], Path]]:
    """Return a function that serves a runner's control socket; stop after."""
    from edge_gate.daemon import ControlServer
    from edge_gate.daemon._paths import prepare_socket_folder

    servers: list[Any] = []

    def serve(runner: Any) -> Path:
        config_path = lane_setup.work / "edge-gate.toml"
        lane_setup.write_toml(config_path)
        socket_path = Path(runner.config.daemon.control_socket)
        prepare_socket_folder(socket_path)
        server = ControlServer(socket_path, runner.control_handlers(), runner.events)
        server.start()
        servers.append(server)
        return config_path

    yield serve
    for server in servers:
        server.stop()


def test_dead_lane_worker_out_of_service(
    lane: Any,
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., None],
) -> None:
    wait_until(lane.idle_in_service)
    kill_lane_worker(lane, monkeypatch)
    wait_until(lambda: "lane" in lane.runner.monitor.failures())

    status = lane.status()
    assert status["in_service"] is False
    problem = f"worker lane stopped on an error: RuntimeError('{FAULT}')"
    assert problem in status["causes"]
    assert f"out of service: {problem}" in lane.runner.status_line()
    (worker,) = [w for w in status["workers"] if w["name"] == "lane"]
    assert worker["stalled"] is True


def test_dead_lane_worker_status_cli_exit_1(
    lane: Any,
    monkeypatch: pytest.MonkeyPatch,
    serve_control: Callable[[Any], Path],
    capsys: pytest.CaptureFixture[str],
    wait_until: Callable[..., None],
) -> None:
    wait_until(lane.idle_in_service)
    config_path = serve_control(lane.runner)
    assert cli_main(["status", "--config", str(config_path)]) == 0
    capsys.readouterr()

    kill_lane_worker(lane, monkeypatch)
    wait_until(lambda: "lane" in lane.runner.monitor.failures())
    assert cli_main(["status", "--config", str(config_path)]) == 1
    output = capsys.readouterr().out
    assert "(OUT OF SERVICE)" in output
    assert "cause       worker lane stopped on an error: RuntimeError(" in output


def test_unexpected_audit_error_keeps_record(
    lane: Any,
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wait_until(lane.idle_in_service)
    fail_next_transaction_write(monkeypatch, lane.runner.audit)
    lane.setup.reader.present(lane.setup.mrz_lines())

    # The write fails once; housekeeping writes the kept record, and the
    # lane thread goes on.
    wait_until(lambda: lane.runner.audit.query(kind="transaction"))
    (entry,) = lane.runner.audit.query(kind="transaction")
    assert entry.record.outcome == "rejected"
    wait_until(lane.idle_in_service)
    assert lane.runner.monitor.failures() == {}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(f"records kept for retry: ValueError('{POISON}')" in m for m in errors)


def test_stalled_housekeeping_out_of_service(
    lane_setup: Any,
    start_lane: Any,
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., None],
) -> None:
    # One pass may take 0.5 s, so the deadline is 1.5 s with the interval.
    running = start_lane(lane_setup, {"housekeeping_stall_s": 0.5})
    wait_until(running.idle_in_service)
    templates = running.runner._templates
    real_status = templates.status
    entered = threading.Event()
    released = threading.Event()

    def blocking_status() -> Any:
        if threading.current_thread().name == "housekeeping":
            entered.set()
            released.wait(30)
        return real_status()

    monkeypatch.setattr(templates, "status", blocking_status)
    try:
        assert entered.wait(10), "housekeeping never read the store"
        wait_until(lambda: not running.status()["in_service"])
        status = running.status()
        (cause,) = [c for c in status["causes"] if "housekeeping" in c]
        assert cause.startswith("worker housekeeping made no progress for ")
        assert cause.endswith(" s (limit 1.5 s)")
        line = running.runner.status_line()
        assert "out of service: worker housekeeping made no progress" in line
    finally:
        released.set()
    # The pass ends and the worker makes progress again.
    wait_until(running.idle_in_service)
