"""The supervisor loop: watchdog pings, STATUS lines, SIGTERM, shutdown.

The loop runs in the main thread of ``edge-gate run``. It pings the systemd
watchdog only while every worker of the lane reported progress within its
deadline, and it updates ``STATUS=`` whenever the lane's status line
changes. It ends cleanly on SIGTERM, SIGINT or SIGHUP. It ends with exit status 1
when a worker failed, so that ``Restart=`` starts a fresh process.

A Python signal handler runs only when the main thread returns to Python
code, so each pass of the loop only reads memory and sends sd_notify
datagrams with a send timeout. Work that may block on SQLite, fsync or
another thread's lock runs in a worker (the lane's housekeeping worker),
where the watchdog check detects a hang.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from edge_gate.daemon._health import ProgressMonitor
from edge_gate.daemon._notify import Notifier

logger = logging.getLogger(__name__)

# Seconds between checks when systemd set no watchdog; STATUS changes and
# worker failures are noticed this fast.
DEFAULT_TICK_S = 1.0


class Supervised(Protocol):
    """The interface of a lane that the supervisor watches."""

    monitor: ProgressMonitor

    def status_line(self) -> str:
        """Return the one-line state for ``STATUS=``, from memory only."""
        ...


class StopRequest:
    """A stop flag set from a signal handler or another thread."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""

    def install(self) -> None:
        """Set the flag on SIGTERM, SIGINT and SIGHUP (call from the main thread).

        SIGHUP arrives when the terminal or SSH session that started the
        process closes. Its default action kills the process at once, before
        the barrier is locked and the audit spool is flushed. A SIGHUP
        already ignored, as under ``nohup``, stays ignored. systemd sends
        none, because the unit has no reload action.
        """
        signals = [signal.SIGTERM, signal.SIGINT]
        if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
            signals.append(signal.SIGHUP)
        for signum in signals:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.signal_name = signal.Signals(signum).name
        self.event.set()


def supervise(
    lane: Supervised,
    notifier: Notifier,
    stop: StopRequest,
    *,
    watchdog_interval_s: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Watch the lane until a stop request or a worker failure.

    Args:
        lane: the started lane.
        notifier: where READY already went; receives WATCHDOG and STATUS.
        stop: set by the signal handler.
        watchdog_interval_s: seconds between pings, or None without a
            systemd watchdog.
        clock: monotonic clock for the ping schedule.

    Returns:
        0 after a stop request, 1 after a worker failed.
    """
    tick_s = min(DEFAULT_TICK_S, watchdog_interval_s or DEFAULT_TICK_S)
    last_status = ""
    last_stalled: list[str] = []
    next_ping = clock()
    while not stop.event.is_set():
        failures = lane.monitor.failures()
        if failures:
            names = ", ".join(sorted(failures))
            # The worker logged its traceback; this line gives the exit.
            for name, error in sorted(failures.items()):
                logger.error(
                    "stopping with exit status 1, so that systemd restarts the "
                    "lane: worker %s stopped on an error: %.200r",
                    name,
                    error,
                )
            notifier.status(f"failed: worker {names} stopped on an error")
            return 1

        # Ping only while every worker makes progress.
        stalled = lane.monitor.stalled()
        if stalled != last_stalled:
            if stalled:
                logger.error("workers not making progress: %s", ", ".join(stalled))
            else:
                logger.info("all workers make progress again")
            last_stalled = stalled
        if watchdog_interval_s is not None and not stalled and clock() >= next_ping:
            notifier.watchdog()
            next_ping = clock() + watchdog_interval_s

        status = lane.status_line()
        if stalled:
            status = f"stalled: {', '.join(stalled)}; {status}"
        if status != last_status:
            notifier.status(status)
            last_status = status
        stop.event.wait(tick_s)
    logger.info("stop requested by %s", stop.signal_name or "the daemon")
    return 0
