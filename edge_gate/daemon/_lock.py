"""One lane daemon per state folder and per runtime folder, enforced with lock files.

``edge-gate run`` and ``edge-gate simulate`` append to the audit log and
read the template store in ``[store] state_dir``. A second daemon on the
same folder would write its own rows into the same hash chain and drive the
same turnstile. :class:`DaemonLock` takes an exclusive ``flock`` on
``daemon.lock`` in that folder and keeps it until the runner stops.

The folder of ``[daemon] control_socket`` (the runtime folder) contains the
control socket and the audit spool. A second daemon there, even with its own
state folder, would replace the first one's socket when it binds and
overwrite its spool. :class:`RuntimeLock` takes ``daemon.lock`` in that
folder the same way.

The kernel releases a ``flock`` when the process ends, even on SIGKILL, so
a crash leaves the file but never a held lock, and the next start takes it
again. ``edge-gate sync`` writes ``templates.db`` in the same folder while
the daemon runs and does not take this lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from edge_gate.config import setting_text
from edge_gate.errors import ConfigError, DaemonRunningError

logger = logging.getLogger(__name__)

LOCK_FILE_NAME = "daemon.lock"
# Maximum number of bytes read from the lock file for the holder's process id.
_MAX_PID_BYTES = 32


class DaemonLock:
    """An exclusive lock on ``daemon.lock`` in one state folder.

    The file contains the process id of the holder, for the message that a
    second daemon prints. Call :meth:`close` to release the lock.

    Args:
        state_dir: the existing state folder.

    Raises:
        DaemonRunningError: another process holds the lock.
        ConfigError: the lock file cannot be created or opened for writing.
        OSError: the lock could not be taken for another reason.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_FILE_NAME
        self._descriptor: int | None = _take_lock(
            self.path,
            setting_text("store", "state_dir", str(state_dir)),
            lambda holder: (
                f"another edge-gate daemon{holder} is running on state folder "
                f"{state_dir}: it holds the lock {self.path}. Stop that daemon "
                "first (systemctl stop edge-gate.service), or give this one its "
                "own [store] state_dir and [daemon] control_socket"
            ),
        )

    def close(self) -> None:
        """Release the lock. Calling it again does nothing.

        The file is not deleted, because a daemon that opened it just before
        a removal would lock the removed file while the next one locks a new
        file.
        """
        if self._descriptor is None:
            return
        os.close(self._descriptor)
        self._descriptor = None
        logger.debug("released the daemon lock %s", self.path)


class RuntimeLock(DaemonLock):
    """An exclusive lock on ``daemon.lock`` in the control socket's folder.

    The folder is created when missing. Call :meth:`close` to release the
    lock.

    Args:
        socket_path: ``[daemon] control_socket``.

    Raises:
        DaemonRunningError: another process holds the lock.
        ConfigError: the folder or the lock file cannot be created or opened.
        OSError: the lock could not be taken for another reason.
    """

    def __init__(self, socket_path: Path) -> None:
        folder = Path(socket_path).parent
        self.path = folder / LOCK_FILE_NAME
        setting = setting_text("daemon", "control_socket", str(socket_path))
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"{setting}: cannot create its folder {folder}: {err.strerror}. "
                "Set control_socket to a path in a writable folder"
            ) from err
        self._descriptor = _take_lock(
            self.path,
            setting,
            lambda holder: (
                f"another edge-gate daemon{holder} uses the folder {folder} of "
                f"control socket {socket_path}: it holds the lock {self.path}. "
                "The control socket and the audit spool are in that folder. Stop "
                "that daemon first (systemctl stop edge-gate.service), or set "
                "this one's [daemon] control_socket in another folder"
            ),
        )


def _take_lock(path: Path, setting: str, busy_message: Callable[[str], str]) -> int:
    """Take an exclusive ``flock`` on ``path`` and write this process id into it.

    Args:
        path: the lock file, created when missing.
        setting: the setting that named the folder, for the error messages.
        busy_message: returns the error message when another process holds
            the lock, from `` (pid N)`` or "".

    Returns:
        The open file descriptor that holds the lock.

    Raises:
        DaemonRunningError: another process holds the lock.
        ConfigError: the lock file cannot be created or opened for writing.
        OSError: the lock could not be taken for another reason.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode=0o600)
    except OSError as err:
        raise ConfigError(
            f"{setting}: cannot open the lock file {path}: {err.strerror}. Make "
            "it writable for the user that runs edge-gate, or remove it while "
            "no edge-gate daemon runs"
        ) from err
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder_pid_text(descriptor)
        os.close(descriptor)
        raise DaemonRunningError(busy_message(holder)) from None
    except OSError:
        os.close(descriptor)
        raise

    # Only the lock holder writes its process id, so a second daemon can name it.
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
    logger.debug("acquired the daemon lock %s", path)
    return descriptor


def _holder_pid_text(descriptor: int) -> str:
    """Return `` (pid N)`` with the process id in the lock file, or "" if unreadable."""
    try:
        text = os.pread(descriptor, _MAX_PID_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {text})" if text.isdigit() else ""
