"""SIGTERM and SIGHUP handling like Ctrl-C's, for commands that may be stopped.

systemd stops a unit with SIGTERM, for example a timer's service at
shutdown, and a closed terminal or SSH session sends SIGHUP. Python installs
no handler for either, so the kernel's default action ends the process at
once and no ``finally`` block or context manager runs. Temporary files are
then left behind, and so are SQLite's ``-wal`` and ``-shm`` files.
:func:`sigterm_unwinds` turns both signals into the :class:`Terminated`
exception instead, which unwinds the command as KeyboardInterrupt does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Signals that end a command as Ctrl-C does: a stop by systemd or kill, and a
# terminal or SSH session that closed.
UNWINDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """Exception raised on SIGTERM or SIGHUP, which unwinds the run as Ctrl-C does.

    Its first argument is the signal number.
    """

    @property
    def signal_name(self) -> str:
        """Name of the signal that ended the run, such as ``SIGTERM``."""
        signum = self.args[0] if self.args else signal.SIGTERM
        try:
            return signal.Signals(signum).name
        except ValueError:
            return f"signal {signum}"


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` in the main thread.

    The exception unwinds the run, so its cleanup runs. A second signal of
    either kind during that cleanup is ignored so that the cleanup finishes.
    A SIGHUP that is already ignored (``nohup``) stays ignored. Outside the
    main thread, where Python cannot set signal handlers, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    handled = [
        signum
        for signum in UNWINDING_SIGNALS
        if signum == signal.SIGTERM or signal.getsignal(signum) != signal.SIG_IGN
    ]

    def on_signal(signum: int, frame: object) -> None:
        del frame
        for other in handled:
            signal.signal(other, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
