"""The audit spool: audit records that could not reach ``audit.db`` yet.

When the audit log cannot be written (disk full, read-only state folder),
the lane daemon keeps the records in memory and stops taking travellers.
:class:`AuditSpool` keeps a copy of those records in one JSON file on
another file system, so they survive a restart of the daemon. The next
start appends them to the audit log in their original order and with their
original contents, then removes the file.

Invariants:

- The spool lies in its own folder of mode 0700, and the file has mode
  0600, because records contain document numbers and scores.
- The file is written to a temporary file in the same folder, fsynced and
  moved into place with ``os.replace``, so a reader finds the old spool or
  the new one, never a mix.
- The file contains a SHA-256 over its own canonical JSON, so a torn write
  or a careless edit fails :meth:`AuditSpool.read` with
  :class:`SpoolIntegrityError` instead of adding false rows to the chain.
  The SHA-256 has no key, so an edit that recomputes it passes: the 0700
  folder owned by the service user is what keeps other users out.
- A spool that fails its check is never deleted by the daemon:
  :meth:`AuditSpool.set_aside` renames it to ``audit-spool.invalid-TIME.json``
  for an engineer to read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_gate.errors import StoreError
from edge_gate.store._audit import AuditRecord, canonical_json
from edge_gate.store._files import replace_file, sync_folder

logger = logging.getLogger(__name__)

SPOOL_FOLDER_NAME = "audit-spool"
SPOOL_FILE_NAME = "audit-spool.json"
INVALID_PREFIX = "audit-spool.invalid-"
SPOOL_FORMAT = "edge_gate audit spool"
SPOOL_VERSION = 1
# A spool larger than this is set aside unread. This is an estimate: while
# the audit hold stops transactions, only alarm and service records (about
# 1 KiB each) are added, so a larger file is most likely damaged.
MAX_SPOOL_BYTES = 64 * 1024 * 1024


class SpoolIntegrityError(StoreError):
    """Error for a spool file that is too large, not valid JSON, fails its
    SHA-256 check, or has invalid contents.
    """


@dataclass(frozen=True)
class SpoolContents:
    """A checked spool file: its records and where they were written.

    Attributes:
        records: the records in the order they must be appended.
        lane_id: ``[daemon] lane_id`` of the daemon that wrote the spool.
        state_dir: ``[store] state_dir`` of that daemon, whose audit log
            the records belong to.
    """

    records: tuple[AuditRecord, ...]
    lane_id: str
    state_dir: str


class AuditSpool:
    """One spool file, ``audit-spool.json``, in a folder of mode 0700.

    Args:
        folder: the spool's own folder, created when the first spool is
            written.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / SPOOL_FILE_NAME

    def exists(self) -> bool:
        """Return whether a spool file is present."""
        return self.path.exists()

    def write(
        self,
        records: Sequence[AuditRecord],
        *,
        written_utc: datetime,
        lane_id: str,
        state_dir: str,
    ) -> None:
        """Replace the spool with ``records``, atomically and durably.

        Args:
            records: the records in the order they must be appended.
            written_utc: the time of writing, timezone-aware.
            lane_id: the lane that wrote the records. The next start
                replays them only into the audit log of the same lane.
            state_dir: the state folder whose audit log the records belong to.

        Raises:
            StoreError: the folder or the file cannot be created or written.
        """
        body = {
            "format": SPOOL_FORMAT,
            "version": SPOOL_VERSION,
            "written_utc": written_utc.astimezone(UTC).isoformat(),
            "lane_id": lane_id,
            "state_dir": state_dir,
            "records": [record.to_json_dict() for record in records],
        }
        document = {**body, "sha256": hashlib.sha256(canonical_json(body)).hexdigest()}
        data = json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8")
        try:
            self._prepare_folder()
            replace_file(self.path, data, prefix=".audit-spool-")
        except OSError as err:
            raise StoreError(f"cannot write audit spool {self.path}: {err}") from err

    def _prepare_folder(self) -> None:
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        # mkdir applies the umask, and a folder from an older run may have wider modes.
        if stat.S_IMODE(self.folder.stat().st_mode) != 0o700:
            os.chmod(self.folder, 0o700)

    def read(self) -> list[AuditRecord]:
        """Read and check the spool, and return its records in append order.

        Raises:
            SpoolIntegrityError: as for :meth:`read_contents`.
            StoreError: the file cannot be read (it is left in place).
        """
        return list(self.read_contents().records)

    def read_contents(self) -> SpoolContents:
        """Read and check the spool, and return its records, lane and state folder.

        Raises:
            SpoolIntegrityError: the file is too large, not JSON, not a
                spool, fails its SHA-256 check, has no lane id or state
                folder, or contains an invalid record.
            StoreError: the file cannot be read (it is left in place).
        """
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_SPOOL_BYTES + 1)
        except OSError as err:
            raise StoreError(f"cannot read audit spool {self.path}: {err}") from err
        if len(data) > MAX_SPOOL_BYTES:
            raise SpoolIntegrityError(
                f"audit spool {self.path} is over {MAX_SPOOL_BYTES} bytes"
            )
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise SpoolIntegrityError(
                f"audit spool {self.path} is not valid JSON (torn or edited): {err}"
            ) from err
        except RecursionError:
            raise SpoolIntegrityError(
                f"audit spool {self.path} nests JSON too deeply to be a spool "
                "(damaged or edited)"
            ) from None
        try:
            return _contents_from_document(self.path, document)
        except RecursionError:
            raise SpoolIntegrityError(
                f"audit spool {self.path} nests JSON too deeply to be a spool "
                "(damaged or edited)"
            ) from None

    def remove(self) -> None:
        """Delete the spool file and sync its folder. A missing file is not an error.

        Raises:
            StoreError: the file exists and cannot be deleted.
        """
        try:
            self.path.unlink(missing_ok=True)
            if self.folder.is_dir():
                sync_folder(self.folder)
        except OSError as err:
            raise StoreError(f"cannot delete audit spool {self.path}: {err}") from err

    def set_aside(self, now_utc: datetime) -> Path:
        """Rename an unreadable spool so that no start reads it again.

        Returns:
            The new path, ``audit-spool.invalid-YYYYMMDDTHHMMSS.ffffffZ.json``.

        Raises:
            StoreError: the file cannot be renamed.
        """
        stamp = now_utc.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.folder / f"{INVALID_PREFIX}{stamp}.json"
        try:
            os.rename(self.path, target)
            sync_folder(self.folder)
        except OSError as err:
            raise StoreError(
                f"cannot move the invalid audit spool {self.path} aside: {err}"
            ) from err
        return target

    def invalid_files(self) -> list[Path]:
        """Return the spools set aside earlier, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"{INVALID_PREFIX}*.json"))


def _contents_from_document(path: Path, document: Any) -> SpoolContents:
    """Check a parsed spool's format and SHA-256, then build its contents."""
    if not isinstance(document, dict):
        raise SpoolIntegrityError(f"audit spool {path} is not a JSON object")
    body = {key: value for key, value in document.items() if key != "sha256"}
    expected = document.get("sha256")
    actual = hashlib.sha256(canonical_json(body)).hexdigest()
    if not isinstance(expected, str) or not hmac.compare_digest(expected, actual):
        raise SpoolIntegrityError(
            f"audit spool {path} fails its SHA-256 check (torn or edited): "
            f"stored {expected!r}, computed {actual}"
        )
    if body.get("format") != SPOOL_FORMAT or body.get("version") != SPOOL_VERSION:
        raise SpoolIntegrityError(
            f"audit spool {path} has format {body.get('format')!r} version "
            f"{body.get('version')!r}, but this edge-gate reads {SPOOL_FORMAT!r} "
            f"version {SPOOL_VERSION}"
        )

    # The start compares these with its own settings before a replay.
    lane_id = body.get("lane_id")
    state_dir = body.get("state_dir")
    if not isinstance(lane_id, str) or not isinstance(state_dir, str):
        raise SpoolIntegrityError(
            f"audit spool {path} has no lane_id or state_dir text: "
            f"lane_id {lane_id!r}, state_dir {state_dir!r}"
        )

    items = body.get("records")
    if not isinstance(items, list):
        raise SpoolIntegrityError(f"audit spool {path} has no list of records")
    records: list[AuditRecord] = []
    for index, item in enumerate(items):
        try:
            records.append(AuditRecord.from_json_dict(item))
        except ValueError as err:
            raise SpoolIntegrityError(
                f"audit spool {path}: record {index} is invalid: {err}"
            ) from err
    return SpoolContents(tuple(records), lane_id, state_dir)
