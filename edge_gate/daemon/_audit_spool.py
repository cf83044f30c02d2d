"""Keep audit records whose write to the audit log failed across a daemon restart.

The runner keeps each record whose write failed in memory and puts the lane
on an ``audit`` service hold.
:class:`SpoolKeeper` mirrors those records into the audit spool
(:class:`~edge_gate.store.AuditSpool`) after every write attempt, so the
spool contains exactly the records still waiting. The spool is in
``audit-spool/`` beside ``[daemon] control_socket``, in the runtime folder
(``/run/edge_gate``, a tmpfs), so a full or read-only state folder does not
stop it from being written. ``edge-gate.service`` sets
``RuntimeDirectoryPreserve=yes``, so the folder survives a stop and a
restart of the service, but not a reboot.

At start, :meth:`SpoolKeeper.read_at_start` returns the spooled records that
the audit log does not contain yet. A record already in the log (the daemon
died between the append and the spool update) is skipped, so a replay never
writes a row twice. A spool that fails its check, or that another lane or
another state folder wrote, is renamed aside and, like any spool set aside
earlier, keeps the lane on a service hold until an engineer removes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from edge_gate.config import GateConfig
from edge_gate.errors import StoreError
from edge_gate.store import AuditLog, AuditRecord, AuditSpool
from edge_gate.store._spool import SPOOL_FOLDER_NAME, SpoolContents

logger = logging.getLogger(__name__)


def spool_folder(config: GateConfig) -> Path:
    """Return the spool's folder: ``audit-spool/`` beside the control socket."""
    return Path(config.daemon.control_socket).parent / SPOOL_FOLDER_NAME


class SpoolKeeper:
    """Audit spool of the runner, replayed at start and mirroring unwritten records.

    Not thread-safe. The runner calls :meth:`sync` only while it holds its
    audit flush lock.

    Args:
        config: the validated configuration.
        wall_clock: returns the current UTC time, stored as the spool's write time.
    """

    def __init__(self, config: GateConfig, wall_clock: Callable[[], datetime]) -> None:
        self.spool = AuditSpool(spool_folder(config))
        self._lane_id = config.daemon.lane_id
        self._state_dir = config.store.state_dir
        self._wall_clock = wall_clock
        # The records that the spool file contains, as last written or read.
        self._spooled: tuple[AuditRecord, ...] = ()
        self._write_error = ""
        # True while the spool file contains exactly the records last synced.
        self.is_current = True
        # True when an unreadable spool could not be moved aside. That file must
        # not be overwritten or deleted.
        self._is_blocked = False
        self.problem = ""

    def read_at_start(self, audit: AuditLog) -> list[AuditRecord]:
        """Read the spool and return its records missing from the audit log.

        A spool that cannot be read, fails its check, or was written by
        another lane or for another state folder is renamed aside, sets
        :attr:`problem` and returns no records. When it cannot even be
        renamed, it stays in place and :meth:`sync` leaves it alone.

        Raises:
            StoreError: the audit log cannot be queried.
        """
        self._warn_if_same_file_system()
        self._check_set_aside()
        if not self.spool.exists():
            return []
        try:
            contents = self.spool.read_contents()
        except StoreError as err:
            self._set_aside(str(err))
            return []
        # A spool left by another lane, or written before [store] state_dir
        # moved, belongs to another audit log and must not join this chain.
        foreign = self._foreign_origin(contents)
        if foreign:
            self._set_aside(foreign)
            return []

        records = list(contents.records)
        self._spooled = contents.records
        missing = [record for record in records if not audit.contains(record)]
        logger.info(
            "audit spool %s contains %d records from an earlier run: appending "
            "%d and skipping %d already in the audit log",
            self.spool.path,
            len(records),
            len(missing),
            len(records) - len(missing),
        )
        return missing

    def _foreign_origin(self, contents: SpoolContents) -> str:
        """Return why the spool belongs to another audit log, or ""."""
        is_same_lane = contents.lane_id == self._lane_id
        is_same_folder = Path(contents.state_dir) == Path(self._state_dir)
        if is_same_lane and is_same_folder:
            return ""
        return (
            f"audit spool {self.spool.path} was written by lane "
            f"{contents.lane_id!r} for state folder {contents.state_dir!r}, but "
            f"this daemon is lane {self._lane_id!r} with state folder "
            f"{self._state_dir!r}. Its records belong to the audit log of that "
            "lane and folder, for example the old [store] state_dir after a move"
        )

    def _set_aside(self, reason: str) -> None:
        try:
            set_aside_path = self.spool.set_aside(self._wall_clock())
            where = f"It is set aside as {set_aside_path}"
        except StoreError as rename_err:
            logger.error("%s", rename_err)
            self._is_blocked = True
            where = f"It stays at {self.spool.path}, because it cannot be renamed,"
        self.problem = (
            f"{reason}. {where} and may contain crossings missing from the audit "
            "log (with document numbers): copy it for the audit records, then "
            "delete it and restart edge-gate.service"
        )
        logger.error("audit spool not replayed: %s", self.problem)

    def _check_set_aside(self) -> None:
        """Set :attr:`problem`, a service hold, while an old set-aside spool exists."""
        set_aside_paths = self.spool.invalid_files()
        if not set_aside_paths:
            return
        self.problem = (
            f"{len(set_aside_paths)} invalid audit spool file(s) set aside, "
            f"the oldest {set_aside_paths[0]}: they may contain crossings "
            "missing from the audit log (with document numbers), so copy them "
            "for the audit records, then delete them and restart "
            "edge-gate.service"
        )
        logger.error("audit spool set aside earlier: %s", self.problem)

    def _warn_if_same_file_system(self) -> None:
        folder = self.spool.folder
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            is_same = os.stat(folder).st_dev == os.stat(self._state_dir).st_dev
        except OSError:
            return
        if is_same:
            logger.warning(
                "audit spool folder %s is on the same file system as the state "
                "folder %s, so a full disk can stop both. Set [daemon] "
                "control_socket to a path in the runtime folder /run/edge_gate",
                self.spool.folder,
                self._state_dir,
            )

    def sync(self, unwritten: Sequence[AuditRecord]) -> bool:
        """Write ``unwritten`` to the spool, or delete the spool when it is empty.

        A failure is logged at ERROR once per distinct message, because
        housekeeping retries every second.

        Returns:
            True when the spool now contains exactly ``unwritten``.
        """
        records = tuple(unwritten)
        if records == self._spooled:
            self.is_current = True
            return True
        if self._is_blocked:
            message = (
                f"audit spool {self.spool.path} is left as found, because it "
                "could not be read or moved aside"
            )
            if message != self._write_error:
                logger.error("audit spool not updated: %s", message)
            self._write_error = message
            self.is_current = False
            return False
        try:
            if records:
                self.spool.write(
                    records,
                    written_utc=self._wall_clock(),
                    lane_id=self._lane_id,
                    state_dir=self._state_dir,
                )
            else:
                self.spool.remove()
        except StoreError as err:
            if str(err) != self._write_error:
                logger.error("audit spool not updated: %s", err)
            self._write_error = str(err)
            self.is_current = False
            return False
        self._write_error = ""
        self.is_current = True
        self._spooled = records
        if records:
            logger.warning(
                "audit spool %s now contains %d records not yet in the audit log",
                self.spool.path,
                len(records),
            )
        else:
            logger.info(
                "audit spool %s removed: every record is written", self.spool.path
            )
        return True
