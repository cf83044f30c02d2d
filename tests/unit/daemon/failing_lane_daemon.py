"""``edge-gate run`` whose lane thread dies on its first transaction record.

Usage: python failing_lane_daemon.py CONFIG_FILE

The first transaction record that the lane thread writes raises
ValueError, an error the lane thread does not handle (text that could not
be encoded once failed this way). Later writes succeed, so the stop can
still write the record. Everything else is the real daemon: configuration,
lane runner, control socket, supervisor, signals.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from edge_gate import store
from edge_gate.daemon import run_daemon


def install_failing_write() -> None:
    """Make the lane thread's first transaction record write raise."""
    real_append = store.AuditLog.append
    failed = threading.Event()

    def append(self: Any, record: Any) -> Any:
        is_lane = threading.current_thread().name == "lane"
        if is_lane and record.kind == "transaction" and not failed.is_set():
            failed.set()
            raise ValueError("record text that cannot be encoded")
        return real_append(self, record)

    store.AuditLog.append = append  # type: ignore[method-assign]


def main() -> int:
    install_failing_write()
    return run_daemon(Path(sys.argv[1]))


if __name__ == "__main__":
    sys.exit(main())
