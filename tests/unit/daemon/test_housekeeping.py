"""Housekeeping that blocks in a store call, and the supervisor around it.

A template store whose ``status()`` waits replaces a SQLite read stuck on
a busy lock or a stalled disk. Everything else is real: the lane runner
on the rig's emulators, the notifier on a bound datagram socket, the
supervisor loop and, in the process test, ``edge-gate run`` with SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edge_gate.daemon import Notifier, StopRequest, supervise

SCRIPT = Path(__file__).with_name("blocking_store_daemon.py")


def collect(notify_socket: Any, until_s: float) -> None:
    """Receive notifications until the monotonic time ``until_s``."""
    while time.monotonic() < until_s:
        notify_socket.receive(max(0.01, until_s - time.monotonic()))


def is_housekeeping() -> bool:
    return threading.current_thread().name == "housekeeping"


def housekeeping_thread() -> threading.Thread:
    (thread,) = [t for t in threading.enumerate() if t.name == "housekeeping"]
    return thread


@dataclass
class StoreBlock:
    """Switches for the template store's ``status()`` calls."""

    armed: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    entered_s: float = 0.0
    # Set when the housekeeping thread reads the store after the release.
    read_after_release: threading.Event = field(default_factory=threading.Event)
    # While set, status() raises StoreError instead of blocking.
    failing: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def store_block(monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreBlock]:
    """Make runners open a template store whose status() blocks when armed."""
    from edge_gate import store
    from edge_gate.errors import StoreError

    block = StoreBlock()

    class BlockingTemplateStore(store.TemplateStore):
        def status(self) -> store.TemplateStatus:
            if block.failing.is_set():
                raise StoreError("database disk image is malformed")
            if block.released.is_set() and is_housekeeping():
                block.read_after_release.set()
            if block.armed.is_set() and not block.released.is_set():
                block.entered_s = time.monotonic()
                block.entered.set()
                block.released.wait(60.0)
            return super().status()

    monkeypatch.setattr(store, "TemplateStore", BlockingTemplateStore)
    yield block
    block.released.set()


def test_blocked_housekeeping_stops_pings(
    lane_setup: Any,
    start_lane: Any,
    store_block: StoreBlock,
    notify_socket: Any,
    wait_until: Callable[..., None],
) -> None:
    # One pass may take 1 s, so the worker's deadline is 2 s with the interval.
    running = start_lane(lane_setup, {"housekeeping_stall_s": 1.0})
    wait_until(running.idle_in_service)
    stop = StopRequest()
    result: list[int] = []
    supervisor = threading.Thread(
        target=lambda: result.append(
            supervise(running.runner, Notifier(), stop, watchdog_interval_s=0.2)
        ),
        name="test-supervisor",
    )
    supervisor.start()
    try:
        notify_socket.wait_for("WATCHDOG=1", timeout_s=5)
        store_block.armed.set()
        assert store_block.entered.wait(10), "housekeeping never read the store"

        # The stall shows after 2 s. The check starts at 4 s, because the
        # test thread may read a ping sent before the stall late.
        collect(notify_socket, store_block.entered_s + 6.0)
        late_pings = [
            t
            for t, m in notify_socket.messages
            if m == "WATCHDOG=1" and t >= store_block.entered_s + 4.0
        ]
        assert late_pings == []
        statuses = [m for _, m in notify_socket.messages if m.startswith("STATUS=")]
        stalled = [
            s for s in statuses if s.startswith("STATUS=stalled: housekeeping; ")
        ]
        assert stalled, statuses

        # The supervisor still ends promptly on a stop request.
        stop.event.set()
        supervisor.join(10)
        assert not supervisor.is_alive()
        assert result == [0]
    finally:
        stop.event.set()
        store_block.released.set()
        supervisor.join(60)


def test_stop_overtakes_slow_pass(
    lane_setup: Any,
    start_lane: Any,
    store_block: StoreBlock,
    caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., None],
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_gate")
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    store_block.armed.set()
    assert store_block.entered.wait(10), "housekeeping never read the store"

    # stop() waits 5 s for the pass and then closes the stores under it.
    # The store call returns only after that, into the closed store.
    worker = housekeeping_thread()
    running.runner.stop()
    store_block.released.set()
    worker.join(10)
    assert not worker.is_alive()

    assert running.runner.monitor.failures() == {}
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["worker housekeeping did not stop within 5.0 s"]
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert tracebacks == []
    ended = [r for r in caplog.records if "ended by the stop" in r.getMessage()]
    assert [r.levelno for r in ended] == [logging.INFO]


def test_store_error_fails_housekeeping(
    lane_setup: Any,
    start_lane: Any,
    store_block: StoreBlock,
    wait_until: Callable[..., None],
) -> None:
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    # Without a stop, a store error still stops the worker with a failure.
    store_block.failing.set()
    wait_until(lambda: "housekeeping" in running.runner.monitor.failures())
    error = running.runner.monitor.failures()["housekeeping"]
    assert "malformed" in str(error)
    store_block.failing.clear()


def test_record_in_flight_no_hold(
    lane_setup: Any,
    start_lane: Any,
    store_block: StoreBlock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., None],
) -> None:
    caplog.set_level(logging.INFO, logger="edge_gate.daemon")
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    real_append = running.runner.audit.append
    write_entered = threading.Event()
    write_released = threading.Event()

    def slow_append(record: Any) -> Any:
        if record.kind == "transaction":
            write_entered.set()
            write_released.wait(10)
        return real_append(record)

    monkeypatch.setattr(running.runner.audit, "append", slow_append)

    # Housekeeping waits in its store read, just before its hold check.
    store_block.armed.set()
    assert store_block.entered.wait(10), "housekeeping never read the store"

    # The lane thread writes the rejection's record while the check goes on.
    running.setup.reader.present(running.setup.mrz_lines())
    try:
        assert write_entered.wait(10), "the lane never wrote the record"
        store_block.released.set()
        # The next pass's store read shows that this pass's check is done.
        assert store_block.read_after_release.wait(10)
        assert "audit" not in running.status()["holds"]
    finally:
        write_released.set()

    wait_until(lambda: any(e.record.kind == "transaction" for e in running.audit()))
    wait_until(running.idle_in_service)
    hold_warnings = [
        r.getMessage() for r in caplog.records if "out of service" in r.getMessage()
    ]
    assert hold_warnings == []


def test_sigterm_while_housekeeping_blocked(
    lane_setup: Any,
    notify_socket: Any,
    wait_until: Callable[..., None],
    start_daemon: Callable[..., Any],
    stop_daemon: Callable[..., tuple[int, str]],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    flag = lane_setup.work / "block-store"
    entered = flag.with_name(flag.name + ".entered")
    arguments = [str(SCRIPT), str(config_path), str(flag)]
    daemon = start_daemon(arguments, notify_socket, merge_output=True)
    try:
        notify_socket.wait_for("READY=1", timeout_s=30)
        flag.touch()
        wait_until(entered.exists)
        daemon.send_signal(signal.SIGTERM)
        stopping = notify_socket.wait_for("STOPPING=1", timeout_s=10)
        assert "STATUS=stopping: locking the barrier" in stopping
    finally:
        # The stop waits for the store call, so release it before the exit.
        flag.unlink(missing_ok=True)
        exit_status, output = stop_daemon(daemon)
    assert exit_status == 0, output
    assert "stop requested by SIGTERM" in output
    assert "Traceback" not in output
