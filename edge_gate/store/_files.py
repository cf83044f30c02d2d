"""Durable replacement of the small files in the state and runtime folders."""

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
