"""Watch the lane's devices appear and disappear (pyudev plus path checks).

udev events are hints. The monitor re-checks every configured device path
after each event and every ``check_interval_s`` seconds, because a netlink
message can be lost. A device may also vanish without one: a
pseudo-terminal closed by the rig, or a udev rule that failed. A change is
reported once per transition through ``on_change(name, is_present)``.

The monitor reads the netlink socket from its own worker thread instead of
pyudev's ``MonitorObserver``, which stops silently when its callback raises
and cannot be restarted (pyudev 0.24.5). Without libudev or netlink (a
container, a test), it falls back to path checks alone.
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable, Mapping
from typing import Any

from edge_gate.daemon._health import ProgressMonitor, Worker

logger = logging.getLogger(__name__)

# Subsystems of the lane's devices: serial readers and sensors, the camera.
WATCHED_SUBSYSTEMS = ("tty", "video4linux")


class DeviceMonitor(Worker):
    """A worker that reports device presence changes by configured path."""

    def __init__(
        self,
        devices: Mapping[str, str],
        on_change: Callable[[str, bool], None],
        monitor: ProgressMonitor,
        *,
        check_interval_s: float = 2.0,
        use_udev: bool = True,
    ) -> None:
        """Prepare the monitor; nothing is reported before :meth:`start`.

        Args:
            devices: device name to the path that must exist (the stable
                symlink from the udev rules, or a folder for a directory
                camera).
            on_change: called from the monitor thread with the device name
                and whether it is now present.
            monitor: where the worker reports progress.
            check_interval_s: seconds between path checks without events.
            use_udev: listen to udev events as well (off in tests).
        """
        super().__init__("device-monitor", monitor, deadline_s=check_interval_s + 5.0)
        self._devices = dict(devices)
        self._on_change = on_change
        self._check_interval_s = check_interval_s
        self._present = {name: _exists(path) for name, path in self._devices.items()}
        self._udev: Any = _open_udev_monitor() if use_udev else None

    def present(self) -> dict[str, bool]:
        """Return each device's presence as last checked."""
        return dict(self._present)

    def missing(self) -> list[str]:
        """Return the names of devices not present at the last check."""
        return sorted(name for name, ok in self._present.items() if not ok)

    def step(self) -> None:
        """Wait for a udev event or the check interval, then check every path."""
        if self._udev is None:
            self.stop_event.wait(self._check_interval_s)
        else:
            readable, _, _ = select.select([self._udev], [], [], self._check_interval_s)
            if readable:
                self._drain_udev()
        self.check_now()

    def check_now(self) -> None:
        """Check every path now and report the devices that changed."""
        for name, path in self._devices.items():
            is_present = _exists(path)
            if is_present == self._present[name]:
                continue
            self._present[name] = is_present
            if is_present:
                logger.info("device %s is back at %s", name, path)
            else:
                logger.warning("device %s disappeared from %s", name, path)
            self._on_change(name, is_present)

    def _drain_udev(self) -> None:
        # Events only trigger the path check; their content is not trusted.
        while True:
            device = self._udev.poll(timeout=0)
            if device is None:
                return
            logger.debug(
                "udev %s %s %s", device.action, device.subsystem, device.sys_name
            )

    def close(self) -> None:
        """Drop the udev monitor."""
        self._udev = None


def _exists(path: str) -> bool:
    return bool(path) and os.path.exists(path)


def _open_udev_monitor() -> Any:
    """Return a started pyudev monitor on the lane's subsystems, or None."""
    try:
        import pyudev

        context = pyudev.Context()
        udev_monitor = pyudev.Monitor.from_netlink(context)
        for subsystem in WATCHED_SUBSYSTEMS:
            udev_monitor.filter_by(subsystem)
        udev_monitor.start()
    except (ImportError, OSError) as err:
        logger.warning("udev events unavailable, checking device paths only: %s", err)
        return None
    return udev_monitor
