"""Durable replacement of the small files in the state and runtime folders,
and the free-space hint of the SQLite stores' error messages."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_file(path: Path, data: bytes, *, prefix: str) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or new file.

    The data goes to a temporary file in the same folder (mode 0600, as
    ``mkstemp`` creates it whatever the umask), is synced, renamed over
    ``path``, and the folder is synced so the rename is durable too.

    Raises:
        OSError: the file cannot be written or renamed. The temporary file
            is removed first.
    """
    descriptor, temporary = tempfile.mkstemp(
        prefix=prefix, suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Sync a folder, so that a created, renamed or deleted entry is durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# Free bytes below which a failed SQLite open is blamed on a full file
# system. SQLite needs a few pages for a new -wal and -shm file, and a
# file system with this little room has no use for the daemon anyway.
FULL_DISK_BYTES = 1024 * 1024


def full_disk_text(path: Path, *, is_write: bool = False) -> str:
    """Return a sentence saying that ``path``'s file system is full, or "".

    SQLite reports a file system without room for its ``-wal`` and ``-shm``
    files as a disk I/O error on open, which reads like a damaged file. The
    caller appends this sentence to its error message.

    Args:
        path: the SQLite file in the ``[store] state_dir`` folder.
        is_write: SQLite reported ``SQLITE_FULL`` on a write, so the
            sentence is returned whatever the free space, and it states
            that nothing was written.
    """
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        free_bytes = None
    else:
        free_bytes = stats.f_bavail * stats.f_frsize
    if is_write:
        free_text = (
            "free space unknown" if free_bytes is None else f"{free_bytes} bytes free"
        )
        return (
            f" The file system of {path.parent} ([store] state_dir) is full "
            f"({free_text}), so nothing was written: free space on that file "
            f"system, and keep {path.name} and its -wal and -shm files"
        )
    if free_bytes is None or free_bytes >= FULL_DISK_BYTES:
        return ""
    return (
        f" The file system of {path.parent} is full ({free_bytes} bytes free), "
        "so SQLite cannot create its -wal and -shm files there: the file is "
        "probably intact. Free space on that file system, then restart "
        "edge-gate.service"
    )
