"""Check the daemon's folders before the lane opens anything in them.

``[store] state_dir`` contains the audit log, the template store and the lock
file, and ``[daemon] control_socket`` is bound after the lane has started.
Without these checks an invalid path in either fails deep in SQLite or
``bind`` with a bare errno text, after the lane has written audit rows.
They raise :class:`~edge_gate.errors.ConfigError` naming the setting, its
value and the fix, so ``edge-gate run`` exits with status 2 first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NoReturn

from edge_gate.config import setting_text
from edge_gate.daemon._control import check_stale_socket
from edge_gate.errors import ConfigError

# Linux keeps a UNIX socket's path in sun_path[108], and CPython 3.11
# rejects a path of 108 bytes or more ("AF_UNIX path too long").
MAX_SOCKET_PATH_BYTES = 107


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state folder if needed and check that files can be created.

    SQLite creates ``audit.db-wal`` and ``audit.db-shm`` beside the audit
    log, so a folder without write access fails even when ``audit.db``
    itself is writable.

    Args:
        state_dir: ``[store] state_dir``.

    Raises:
        ConfigError: the path is a file, the folder cannot be created, or no
            file can be created in it.
    """
    setting = setting_text("store", "state_dir", str(state_dir))
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise ConfigError(
            f"{setting}: it is a file, not a folder. Set state_dir to a folder, "
            "or move the file away"
        ) from err
    except NotADirectoryError as err:
        raise ConfigError(
            f"{setting}: a part of the path is a file, not a folder. Set "
            "state_dir to a path made of folders"
        ) from err
    except OSError as err:
        raise ConfigError(
            f"{setting}: cannot create the folder: {err.strerror}. Create it "
            "for the daemon's user (edge-gate.service creates /var/lib/edge_gate "
            "with StateDirectory=), or set state_dir to a writable folder"
        ) from err

    try:
        with tempfile.TemporaryFile(dir=state_dir):
            pass
    except OSError as err:
        raise ConfigError(
            f"{setting}: cannot create files in the folder: {err.strerror}. "
            f"Make it writable for the user that runs edge-gate (uid "
            f"{os.geteuid()}), or check that its file system is mounted "
            "read-write"
        ) from err


def prepare_socket_folder(socket_path: Path) -> None:
    """Create the control socket's folder and check that it can be bound there.

    A socket file left by a crashed daemon is kept here. The control server
    removes it when it binds, after the lane has taken the state folder's
    ``daemon.lock``. Before that lock, a socket that refuses connections
    may belong to a daemon between its ``bind`` and its ``listen``.

    Args:
        socket_path: ``[daemon] control_socket``.

    Raises:
        ConfigError: the path is too long for a UNIX socket, its folder
            cannot be created or written, or a symbolic link or a file that
            is not a socket is in the way.
        DaemonRunningError: a daemon listens on the socket.
        ControlError: the socket exists and this process may not connect
            to it.
    """
    setting = setting_text("daemon", "control_socket", str(socket_path))
    length = len(os.fsencode(socket_path))
    if length > MAX_SOCKET_PATH_BYTES:
        raise ConfigError(
            f"{setting}: the path is {length} bytes long, and a UNIX socket "
            f"path may have at most {MAX_SOCKET_PATH_BYTES}. Set a shorter path"
        )

    folder = socket_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"{setting}: cannot create its folder {folder}: {err.strerror}. Set "
            "control_socket to a path in a writable folder, such as "
            "/run/edge_gate/control.sock (edge-gate.service creates /run/edge_gate "
            "with RuntimeDirectory=)"
        ) from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{setting}: its folder {folder} is not writable for the user that "
            f"runs edge-gate (uid {os.geteuid()}). Make it writable, or set "
            "control_socket to a path in a writable folder"
        )

    # exists() and is_socket() follow a symbolic link, but bind() fails on
    # any link, even a dangling one, after the lane has opened its devices.
    if socket_path.is_symlink():
        _reject_symlink(socket_path, setting)
    if socket_path.exists() and not socket_path.is_socket():
        raise ConfigError(
            f"{setting}: {socket_path} exists and is not a socket. Move it away, "
            "or set control_socket to another path"
        )
    check_stale_socket(socket_path)


def _reject_symlink(socket_path: Path, setting: str) -> NoReturn:
    """Reject a symbolic link at the control socket's path by raising.

    A daemon that listens behind the link gets the same rejection as one
    that listens at the path itself: DaemonRunningError, exit status 1.

    Raises:
        DaemonRunningError: a server accepts connections behind the link.
        ControlError: the link leads to a socket that this process may not
            connect to.
        ConfigError: in every other case, dangling link or not.
    """
    target = os.readlink(socket_path)
    check_stale_socket(socket_path)
    dangling = "" if socket_path.exists() else " (a dangling link)"
    raise ConfigError(
        f"{setting}: {socket_path} is a symbolic link to {target}{dangling}, "
        "and the daemon creates its socket at that path itself. Remove the "
        "link, or set control_socket to another path"
    )
