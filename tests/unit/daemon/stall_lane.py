"""A daemon process for the supervision tests: real notifier and supervisor.

Usage: python stall_lane.py FLAG_FILE

One worker steps every 50 ms and blocks while FLAG_FILE exists, as a hung
driver call would. The supervisor loop is the one ``edge-gate run`` uses.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from edge_gate.daemon import (
    Notifier,
    ProgressMonitor,
    StopRequest,
    Worker,
    supervise,
    watchdog_interval_s,
)


class StallingWorker(Worker):
    def __init__(self, monitor: ProgressMonitor, flag: Path) -> None:
        super().__init__("reader", monitor, deadline_s=0.5)
        self.flag = flag

    def step(self) -> None:
        while self.flag.exists() and not self.stop_event.is_set():
            time.sleep(0.01)
        self.stop_event.wait(0.05)


class Lane:
    def __init__(self, flag: Path) -> None:
        self.monitor = ProgressMonitor()
        self.worker = StallingWorker(self.monitor, flag)

    def status_line(self) -> str:
        return "lane test idle"


def main() -> int:
    # The supervisor logs which signal stopped it.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    lane = Lane(Path(sys.argv[1]))
    notifier = Notifier()
    stop = StopRequest()
    stop.install()
    lane.worker.start()
    notifier.ready(lane.status_line())
    status = supervise(lane, notifier, stop, watchdog_interval_s=watchdog_interval_s())
    notifier.stopping("stopping")
    lane.worker.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
