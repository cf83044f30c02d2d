"""Tests of the device monitor: path checks, with and without udev."""

from __future__ import annotations

import os
import pty
import threading
from pathlib import Path

from edge_gate.daemon import ProgressMonitor
from edge_gate.daemon._devices import DeviceMonitor


def make_link(path: Path) -> tuple[int, int]:
    master, slave = pty.openpty()
    path.symlink_to(os.ttyname(slave))
    return master, slave


def test_reports_each_transition_once(short_tmp: Path) -> None:
    changes: list[tuple[str, bool]] = []
    link = short_tmp / "reader"
    master, slave = make_link(link)
    monitor = DeviceMonitor(
        {"document_reader": str(link), "fingerprint": str(short_tmp / "absent")},
        lambda name, present: changes.append((name, present)),
        ProgressMonitor(),
        check_interval_s=0.05,
        use_udev=False,
    )
    assert monitor.missing() == ["fingerprint"]

    # Unplug: the pty closes and the stable link dangles.
    os.close(slave)
    os.close(master)
    monitor.check_now()
    monitor.check_now()
    assert changes == [("document_reader", False)]

    master, slave = pty.openpty()
    link.unlink()
    link.symlink_to(os.ttyname(slave))
    monitor.check_now()
    assert changes == [("document_reader", False), ("document_reader", True)]
    assert monitor.present() == {"document_reader": True, "fingerprint": False}
    os.close(slave)
    os.close(master)


def test_thread_with_udev_reports(short_tmp: Path) -> None:
    seen = threading.Event()
    folder = short_tmp / "camera"
    monitor = DeviceMonitor(
        {"iris_camera": str(folder)},
        lambda name, present: seen.set() if present else None,
        ProgressMonitor(),
        check_interval_s=0.05,
        use_udev=True,
    )
    monitor.start()
    try:
        folder.mkdir()
        assert seen.wait(5)
    finally:
        assert monitor.stop(timeout_s=5)
