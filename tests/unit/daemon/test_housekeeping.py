"""Housekeeping that blocks in a store call, and the supervisor around it.

A template store whose ``status()`` waits replaces a SQLite read stuck on
a busy lock or a stalled disk. Everything else is real: the lane runner
on the rig's emulators, the notifier on a bound datagram socket, the
supervisor loop and, in the process test, ``edge-gate run`` with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


@dataclass
class StoreBlock:
    """Switches for the template store's ``status()`` calls."""

    armed: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    entered_s: float = 0.0


@pytest.fixture
def store_block(monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreBlock]:
    """Make runners open a template store whose status() blocks when armed."""
    from edge_gate import store

    block = StoreBlock()

    class BlockingTemplateStore(store.TemplateStore):
        def status(self) -> store.TemplateStatus:
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


def start_daemon(config_path: Path, flag: Path, notify_socket: Any) -> Any:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_socket.path))
    env["WATCHDOG_USEC"] = "3000000"
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-X",
            "faulthandler",
            str(SCRIPT),
            str(config_path),
            str(flag),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_sigterm_while_housekeeping_blocked(
    lane_setup: Any,
    notify_socket: Any,
    wait_until: Callable[..., None],
    stop_daemon: Callable[..., tuple[int, str]],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    flag = lane_setup.work / "block-store"
    entered = flag.with_name(flag.name + ".entered")
    daemon = start_daemon(config_path, flag, notify_socket)
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
