"""``edge-gate run`` with a template store that can block, for the tests.

Usage: python blocking_store_daemon.py CONFIG_FILE FLAG_FILE

While FLAG_FILE exists, every ``TemplateStore.status()`` call waits, as a
SQLite read on a busy lock or a stalled disk would, and the file
FLAG_FILE.entered shows that a call is waiting. Everything else is the real
daemon: configuration, lane runner, control socket, supervisor, signals.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from edge_gate import store
from edge_gate.daemon import run_daemon


def install_blocking_store(flag: Path) -> None:
    """Make the runner open a template store whose status() waits on ``flag``."""
    entered = flag.with_name(flag.name + ".entered")

    class BlockingTemplateStore(store.TemplateStore):
        def status(self) -> store.TemplateStatus:
            while flag.exists():
                entered.touch()
                time.sleep(0.01)
            return super().status()

    # LaneRunner.start imports TemplateStore from edge_gate.store at call time.
    store.TemplateStore = BlockingTemplateStore  # type: ignore[misc]


def main() -> int:
    config_path, flag = Path(sys.argv[1]), Path(sys.argv[2])
    install_blocking_store(flag)
    return run_daemon(config_path)


if __name__ == "__main__":
    sys.exit(main())
