"""Tests of worker progress tracking, with an injected clock."""

from __future__ import annotations

import threading

import pytest

from edge_gate.daemon import ProgressMonitor, Worker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stalled_after_deadline() -> None:
    clock = FakeClock()
    monitor = ProgressMonitor(clock)
    monitor.register("reader", 2.0)
    monitor.register("lane", 5.0)
    clock.now += 3.0
    assert monitor.stalled() == ["reader"]
    monitor.beat("reader")
    assert monitor.is_healthy()
    clock.now += 5.5
    assert monitor.stalled() == ["lane", "reader"]


def test_failure_marks_stalled() -> None:
    monitor = ProgressMonitor(FakeClock())
    monitor.register("iris", 10.0)
    monitor.fail("iris", RuntimeError("camera driver crashed"))
    assert monitor.stalled() == ["iris"]
    assert "camera driver crashed" in monitor.snapshot()[0].error
    assert list(monitor.failures()) == ["iris"]


def test_unregistered_not_tracked() -> None:
    clock = FakeClock()
    monitor = ProgressMonitor(clock)
    monitor.register("watchlist", 1.0)
    monitor.unregister("watchlist")
    clock.now += 10
    monitor.beat("watchlist")
    assert monitor.is_healthy()
    assert monitor.snapshot() == []


def test_register_rejects_bad_deadline() -> None:
    with pytest.raises(ValueError, match="positive"):
        ProgressMonitor().register("lane", 0)


class CountingWorker(Worker):
    def __init__(self, monitor: ProgressMonitor, fail_at: int | None = None) -> None:
        super().__init__("counting", monitor, deadline_s=5.0)
        self.steps = 0
        self.closed = threading.Event()
        self.fail_at = fail_at

    def step(self) -> None:
        self.steps += 1
        if self.steps == self.fail_at:
            raise RuntimeError("step failed")
        self.stop_event.wait(0.01)

    def close(self) -> None:
        self.closed.set()


def test_worker_stops_and_closes() -> None:
    monitor = ProgressMonitor()
    worker = CountingWorker(monitor)
    worker.start()
    while worker.steps < 3:
        worker.stop_event.wait(0.01)
    assert worker.stop(timeout_s=2.0)
    assert worker.closed.is_set()
    assert monitor.snapshot() == []


def test_worker_error_reaches_monitor() -> None:
    monitor = ProgressMonitor()
    worker = CountingWorker(monitor, fail_at=2)
    worker.start()
    worker.join(2.0)
    assert not worker.is_alive()
    assert worker.closed.is_set()
    assert "step failed" in repr(monitor.failures()["counting"])


class ExitingWorker(Worker):
    """Calls sys.exit in its step, as a library might on a fatal error."""

    def __init__(self, monitor: ProgressMonitor) -> None:
        super().__init__("exiting", monitor, deadline_s=5.0)

    def step(self) -> None:
        raise SystemExit(3)


def test_worker_exit_reaches_monitor() -> None:
    monitor = ProgressMonitor()
    worker = ExitingWorker(monitor)
    worker.start()
    worker.join(2.0)
    assert not worker.is_alive()
    assert repr(monitor.failures()["exiting"]) == "SystemExit(3)"
    assert monitor.stalled() == ["exiting"]


def test_problem_names_error() -> None:
    monitor = ProgressMonitor(FakeClock())
    monitor.register("lane", 10.0)
    monitor.fail("lane", ValueError("bad record"))
    (health,) = monitor.snapshot()
    assert health.problem == (
        "worker lane stopped on an error: ValueError('bad record')"
    )


def test_problem_names_stall_time() -> None:
    clock = FakeClock()
    monitor = ProgressMonitor(clock)
    monitor.register("housekeeping", 121.0)
    clock.now += 121.0
    assert monitor.snapshot()[0].problem == ""
    clock.now += 83.4
    (health,) = monitor.snapshot()
    assert health.problem == (
        "worker housekeeping made no progress for 204 s (limit 121 s)"
    )
