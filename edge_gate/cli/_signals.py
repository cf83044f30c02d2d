"""SIGTERM handling like Ctrl-C's, for commands that systemd may stop.

systemd stops a unit with SIGTERM, for example a timer's service at
shutdown. Python installs no SIGTERM handler, so the kernel's default action
ends the process at once and no ``finally`` block or context manager runs.
Temporary files are then left behind, and so are SQLite's ``-wal`` and
``-shm`` files. :func:`sigterm_unwinds` turns SIGTERM into the :class:`Terminated`
exception instead, which unwinds the command as KeyboardInterrupt does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(BaseException):
    """Exception raised on SIGTERM, which unwinds the run as KeyboardInterrupt does."""


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread.

    The exception unwinds the run, so its cleanup runs. A second SIGTERM
    during that cleanup is ignored so that the cleanup finishes. Outside the
    main thread, where Python cannot set signal handlers, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        del frame
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
