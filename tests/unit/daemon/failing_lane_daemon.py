"""``edge-gate run`` whose lane thread dies on the first document.

Usage: python failing_lane_daemon.py CONFIG_FILE

The lane core raises RuntimeError on the first document read in the lane
thread, an error the lane thread does not handle (a bug in the core).
Everything else is the real daemon: configuration, lane runner, control
socket, supervisor, signals.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from edge_gate.daemon import run_daemon
from edge_gate.gate import DocumentRead, Lane


def install_failing_core() -> None:
    """Make the lane core raise on the lane thread's first document."""
    real_handle = Lane.handle
    failed = threading.Event()

    def handle(self: Any, event: Any, now_s: float) -> Any:
        is_lane = threading.current_thread().name == "lane"
        if is_lane and isinstance(event, DocumentRead) and not failed.is_set():
            failed.set()
            raise RuntimeError("lane core fault")
        return real_handle(self, event, now_s)

    Lane.handle = handle  # type: ignore[method-assign]


def main() -> int:
    install_failing_core()
    return run_daemon(Path(sys.argv[1]))


if __name__ == "__main__":
    sys.exit(main())
