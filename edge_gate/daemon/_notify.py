"""Tell systemd about the daemon's state (sd_notify protocol) through sdnotify.

sdnotify 0.3.2 has three limits this module guards:

- It encodes messages as Latin-1 and hides the error, so a ``STATUS=`` line
  with Vietnamese text is never sent. :class:`Notifier` encodes the message
  as UTF-8 itself and hands sdnotify the bytes spelled as Latin-1 characters,
  which sdnotify's Latin-1 encoder turns back into exactly those bytes.
- It connects once, so after systemd re-creates its notification socket
  (``systemctl daemon-reexec``) every later message is lost. :class:`Notifier`
  opens a new sdnotify connection for each message.
- It sends on a blocking socket. A datagram to a receiver whose queue is
  full (systemd busy, ``net.unix.max_dgram_qlen`` messages waiting) blocks
  the sender, and here that is the supervisor's main thread, which then
  cannot act on SIGTERM. :class:`Notifier` gives each socket a send timeout
  of ``SEND_TIMEOUT_S``, so a message not sent by then is dropped.

Errors are reported (sdnotify's ``debug=True``), logged and counted rather
than swallowed. Without ``NOTIFY_SOCKET`` every call does nothing.
"""

from __future__ import annotations

import logging
import os
import threading

import sdnotify

logger = logging.getLogger(__name__)

# A datagram longer than this is cut: systemd reads notifications into a
# buffer of about 4 KiB (estimate from sd_notify(3); a STATUS line is short).
MAX_STATUS_CHARS = 1000
# Seconds one message may wait for room in systemd's receive queue. A
# dropped WATCHDOG=1 is replaced by the next ping, a third of the watchdog
# timeout later. This is an estimate, because PID 1 reads its notification
# socket between other work, and a busier PID 1 needs more time.
SEND_TIMEOUT_S = 1.0
# Seconds of start-up that each progress message grants, from the moment
# systemd receives it, beyond ``TimeoutStartSec``. A progress step (one
# commit of 1,000 spooled audit records) took 30 ms here. An SD card is
# slower, but by an estimate still well under a second.
START_EXTENSION_S = 30.0


class Notifier:
    """Send ``READY``, ``STATUS``, ``WATCHDOG``, ``STOPPING`` and start extensions."""

    def __init__(self) -> None:
        self.socket_path = os.environ.get("NOTIFY_SOCKET", "")
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def is_enabled(self) -> bool:
        """True when systemd (or a test) listens on ``NOTIFY_SOCKET``."""
        return bool(self.socket_path)

    def ready(self, status: str | None = None) -> bool:
        """Report that start-up finished, with an optional status line."""
        return self._send(_with_status("READY=1", status))

    def status(self, text: str) -> bool:
        """Report a one-line status for ``systemctl status``."""
        return self._send(_with_status("", text))

    def start_progress(self, status: str) -> bool:
        """Report start-up progress and extend systemd's start timeout.

        systemd (236 or later) then waits ``START_EXTENSION_S`` more seconds
        from now before it counts the start as failed.
        """
        extension_us = round(START_EXTENSION_S * 1_000_000)
        return self._send(_with_status(f"EXTEND_TIMEOUT_USEC={extension_us}", status))

    def watchdog(self) -> bool:
        """Reset the service's watchdog timer."""
        return self._send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Report that a clean shutdown began."""
        return self._send(_with_status("STOPPING=1", status))

    def _send(self, message: str) -> bool:
        """Send one message; return False (and log) when it could not be sent."""
        if not self.is_enabled or not message:
            return False

        # Each message gets its own connection, so a re-created socket works.
        payload = message.encode("utf-8").decode("latin-1")
        with self._lock:
            try:
                notifier = sdnotify.SystemdNotifier(debug=True)
                try:
                    notifier.socket.settimeout(SEND_TIMEOUT_S)
                    notifier.notify(payload)
                finally:
                    notifier.socket.close()
            except (OSError, TypeError, ValueError) as err:
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:
                    logger.warning(
                        "cannot notify systemd at %s (%d failures): %s",
                        self.socket_path,
                        self.failures,
                        err,
                    )
                return False
        return True


def _with_status(head: str, status: str | None) -> str:
    if status is None:
        return head

    # STATUS= is one line; systemd reads the first line break as the end.
    line = " ".join(status.split())[:MAX_STATUS_CHARS]
    return f"{head}\nSTATUS={line}" if head else f"STATUS={line}"


def watchdog_interval_s() -> float | None:
    """Return the watchdog ping interval, or None when systemd set no watchdog.

    systemd exports ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` once
    ``WatchdogSec=`` is set. The variables apply only when ``WATCHDOG_PID`` is
    unset or names this process. The interval is a third of the timeout:
    sd_watchdog_enabled(3) recommends half, and the extra margin covers garbage
    collection pauses and slow SD-card writes (estimate).
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        timeout_s = int(usec) / 1_000_000
    except ValueError:
        logger.warning("ignoring WATCHDOG_USEC=%r: not a whole number", usec)
        return None
    if timeout_s <= 0:
        return None
    return timeout_s / 3
