"""The lane's audit log: one hash-chained SQLite row per transaction.

``audit.db`` lives in the state directory and is written only by the lane
daemon. Invariants:

- SQLite runs in WAL mode with ``synchronous=FULL``, and each row is written
  in its own ``BEGIN IMMEDIATE`` transaction, so a row that :meth:`AuditLog.append`
  returned for survives a process kill and a power cut.
- Each row stores ``prev_hash`` (the previous row's hash) and ``row_hash`` =
  SHA-256 over ``prev_hash`` and the row's canonical JSON. The ``chain`` table
  contains the anchor (the hash before the oldest kept row) and the head (the
  newest row's sequence number and hash), updated in the same transaction as
  the rows, so :meth:`AuditLog.verify` finds a changed, inserted or deleted
  row, the last one included.
- Rows hold no images and no templates: :class:`AuditRecord` has no field for
  bytes, and scores, thresholds and durations must be numbers, stored as
  floats.
- A row reads back only if each column holds exactly the text the writer
  stores: queries filter on the stored text, so another spelling of the same
  time or JSON would keep the hash valid yet hide the row from a filter.

- The head (sequence number and hash) is also kept outside ``audit.db``, in
  ``audit.head`` beside it: written after each commit to a temporary file,
  fsynced and moved into place. :attr:`AuditLog.head_problem` and
  :meth:`AuditLog.verify` compare both, so rows deleted from the end, a
  rolled-back chain and a deleted ``audit.db`` are found. The head file may
  lag the database by the last commit (a kill between the commit and the
  file write), so the database may be ahead by rows that chain correctly,
  never behind. While a problem is found, the head file is left as it is,
  as evidence.
- A writer remembers the device and inode of the ``audit.db`` it opened.
  When the path no longer names that file (deleted, moved or replaced while
  the log is open), :meth:`AuditLog.append` writes nothing and raises, so no
  row goes into a file that is gone, and :meth:`AuditLog.check_file` copies
  the open file's rows back to the path (or beside it when another file is
  there), and again when that copy is deleted in turn. When the path
  changes between that check and the commit, :meth:`AuditLog.append_many`
  raises :class:`RowsInLostFileError`, because the rows are in the open
  file only. A failed head file write is reported in
  :attr:`AuditLog.head_write_problem` until a later write succeeds.
- A missing head file next to an existing ``audit.db`` hides a cut at the
  end, so :meth:`AuditLog.verify` reports it (verdict ``end_unverified``).
  Opening the log for writing starts a new head file and records that as a
  ``service`` row, which :meth:`AuditLog.verify` lists in
  ``head_restart_seqs``.

The chain is unkeyed: someone who can write the state directory can
recompute every hash and rewrite both heads, or delete the oldest rows and
move the anchor to the last deleted row. The daemon logs the head hash to
the journal at start and stop, so a rewritten chain shows up against the
journal.
NOTE: nothing records the anchor outside ``audit.db``, so rows deleted from
the start together with a moved anchor are not detected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sqlite3
import stat
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from edge_gate._closing import Closing
from edge_gate.errors import StoreError
from edge_gate.store._files import full_disk_text, sync_folder

logger = logging.getLogger(__name__)

AUDIT_DB_NAME = "audit.db"
AUDIT_HEAD_NAME = "audit.head"
# Start of the reason of the ``service`` row that records a restarted head file.
HEAD_RESTART_REASON = "audit.head was missing when the audit log was opened"
SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64

RecordKind = Literal["transaction", "manual_open", "service"]
RECORD_KINDS: tuple[str, ...] = ("transaction", "manual_open", "service")
OUTCOMES: tuple[str, ...] = (
    "accepted",
    "rejected",
    "alert",
    "aborted",
    "emergency",
    "opened",
    "none",
)
MAX_TEXT_CHARS = 500
# The largest sequence number SQLite's INTEGER holds.
MAX_SEQ = 2**63 - 1
# A head file is one short JSON line; a larger one is not a head.
MAX_HEAD_FILE_BYTES = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time_utc TEXT NOT NULL,
    kind TEXT NOT NULL,
    lane_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    issuing_state TEXT NOT NULL,
    document_number TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    alarms TEXT NOT NULL,
    scores TEXT NOT NULL,
    thresholds TEXT NOT NULL,
    durations_ms TEXT NOT NULL,
    latency_ms REAL,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_utc);
CREATE TABLE IF NOT EXISTS chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    anchor_seq INTEGER NOT NULL,
    anchor_hash TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class AuditRecord:
    """One audit row as the daemon hands it in.

    ``time_utc`` must be timezone-aware. ``scores``, ``thresholds`` and
    ``durations_ms`` map a name (``fingerprint``, ``iris``, ``document``
    ...) to a finite number; ``durations_ms`` contains each step's duration in
    milliseconds and ``latency_ms`` the time from the last capture to the
    barrier command.
    """

    time_utc: datetime
    transaction_id: str
    outcome: str
    reason: str
    kind: RecordKind = "transaction"
    lane_id: str = ""
    issuing_state: str = ""
    document_number: str = ""
    alarms: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    durations_ms: Mapping[str, float] = field(default_factory=dict)
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        """Store whole numbers as floats, as the REAL column and JSON read back.

        The row hash covers the JSON text, where ``5`` and ``5.0`` differ, so
        a record must hash the same before it is written and after it is read
        back. A whole number too large for a float is left as it is, for
        :meth:`check` to reject.
        """
        object.__setattr__(self, "latency_ms", _as_float(self.latency_ms))
        for group in ("scores", "thresholds", "durations_ms"):
            values = getattr(self, group)
            if isinstance(values, Mapping) and any(
                _is_whole_number(value) for value in values.values()
            ):
                converted = {name: _as_float(value) for name, value in values.items()}
                object.__setattr__(self, group, converted)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON types (time as ISO 8601 UTC)."""
        return {
            "time_utc": _format_time(self.time_utc),
            "kind": self.kind,
            "lane_id": self.lane_id,
            "transaction_id": self.transaction_id,
            "issuing_state": self.issuing_state,
            "document_number": self.document_number,
            "outcome": self.outcome,
            "reason": self.reason,
            "alarms": list(self.alarms),
            "scores": dict(sorted(self.scores.items())),
            "thresholds": dict(sorted(self.thresholds.items())),
            "durations_ms": dict(sorted(self.durations_ms.items())),
            "latency_ms": self.latency_ms,
        }

    def check(self) -> None:
        """Raise ValueError if :meth:`AuditLog.append` would reject this record.

        The message names the first invalid field.
        """
        _validate(self)

    def sanitized(self) -> AuditRecord:
        """Return a copy that :meth:`AuditLog.append` accepts, keeping what it can.

        Text that is not valid Unicode keeps its characters, with each lone
        surrogate written as a backslash escape, and text over
        ``MAX_TEXT_CHARS`` is cut. Values that are not finite numbers are
        dropped. An unknown kind becomes ``service`` and an unknown outcome
        ``none``. A time without a time zone is taken as UTC.
        """
        numbers = {
            group: {
                _clean_text(name): float(value)
                for name, value in getattr(self, group).items()
                if _is_finite_number(value)
            }
            for group in ("scores", "thresholds", "durations_ms")
        }
        return replace(
            self,
            time_utc=self.time_utc
            if self.time_utc.tzinfo is not None
            else self.time_utc.replace(tzinfo=UTC),
            transaction_id=_clean_text(self.transaction_id),
            outcome=self.outcome if self.outcome in OUTCOMES else "none",
            reason=_clean_text(self.reason),
            kind=self.kind if self.kind in RECORD_KINDS else "service",
            lane_id=_clean_text(self.lane_id),
            issuing_state=_clean_text(self.issuing_state),
            document_number=_clean_text(self.document_number),
            alarms=tuple(_clean_text(alarm) for alarm in self.alarms),
            latency_ms=self.latency_ms if _is_finite_number(self.latency_ms) else None,
            **numbers,
        )

    @classmethod
    def from_json_dict(cls, values: Any) -> AuditRecord:
        """Build a record from the output of :meth:`to_json_dict`.

        Raises:
            ValueError: a key is missing or unknown, a value has the wrong
                type, or the record fails the checks of
                :meth:`AuditLog.append`.
        """
        if not isinstance(values, dict):
            raise ValueError(
                f"invalid audit record: expected a JSON object, got "
                f"{type(values).__name__}"
            )
        if set(values) != _RECORD_KEYS:
            raise ValueError(
                f"invalid audit record: expected exactly the keys "
                f"{sorted(_RECORD_KEYS)}, got {sorted(map(str, values))}"
            )
        groups = ("alarms", "scores", "thresholds", "durations_ms")
        for name, kind in zip(groups, (list, dict, dict, dict), strict=True):
            if not isinstance(values[name], kind):
                raise ValueError(f"audit field {name} must be a JSON {kind.__name__}")
        try:
            time_utc = _parse_time(values["time_utc"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"audit field time_utc is invalid: {err}") from err
        record = cls(
            time_utc=time_utc,
            kind=values["kind"],
            lane_id=values["lane_id"],
            transaction_id=values["transaction_id"],
            issuing_state=values["issuing_state"],
            document_number=values["document_number"],
            outcome=values["outcome"],
            reason=values["reason"],
            alarms=tuple(values["alarms"]),
            scores=values["scores"],
            thresholds=values["thresholds"],
            durations_ms=values["durations_ms"],
            latency_ms=values["latency_ms"],
        )
        _validate(record)
        return record


@dataclass(frozen=True)
class AuditEntry:
    """A stored row: its sequence number, the record and its chain hash.

    ``damage`` is set when the stored row cannot be read back as a record,
    for example a JSON column that is not valid JSON. It names the row and
    the column, and ``record`` is then a placeholder ``service`` record
    (time 1970-01-01 UTC) whose reason repeats ``damage``.
    """

    seq: int
    record: AuditRecord
    row_hash: str
    damage: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """Return the row as plain JSON types.

        A damaged row has only ``seq``, ``damaged`` and ``hash``.
        """
        if self.damage:
            return {"seq": self.seq, "damaged": self.damage, "hash": self.row_hash}
        return {"seq": self.seq, **self.record.to_json_dict(), "hash": self.row_hash}


VerifyVerdict = Literal["intact", "broken", "damaged", "end_unverified"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :meth:`AuditLog.verify`.

    ``verdict`` is one of:

    - ``intact``: every check passed.
    - ``broken``: a row, the chain record or the head file fails its check.
    - ``damaged``: SQLite reports ``audit.db`` itself as damaged (cut or
      overwritten outside SQLite), so its rows cannot be checked one by one.
    - ``end_unverified``: the rows chain correctly, but ``audit.head`` is
      missing, so rows cut from the end cannot be detected.

    ``is_intact`` is true only for ``intact``.
    ``first_bad_seq`` is the sequence number where the chain first breaks
    (a row that fails its check, or the first missing row), or None when
    the chain is intact or the break cannot be tied to a row.
    ``cut_after_seq`` is set when rows are missing from the end: it is the
    last row still present (0 when none is), and ``first_bad_seq`` is the
    first missing row after it.
    ``problem`` describes the break.
    ``head_restart_seqs`` lists the ``service`` rows that record a new
    ``audit.head`` started because the old one was missing.
    """

    is_intact: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""
    cut_after_seq: int | None = None
    verdict: VerifyVerdict = "intact"
    head_restart_seqs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        """Check that ``is_intact`` agrees with ``verdict``.

        Raises:
            ValueError: the two disagree.
        """
        if self.is_intact != (self.verdict == "intact"):
            raise ValueError(
                f"verify result is_intact={self.is_intact} contradicts verdict "
                f"{self.verdict!r}"
            )

    def to_json_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON types."""
        return {
            "intact": self.is_intact,
            "verdict": self.verdict,
            "rows_checked": self.rows_checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad_seq,
            "cut_after_seq": self.cut_after_seq,
            "problem": self.problem,
            "head_restart_seqs": list(self.head_restart_seqs),
        }


class _InvalidHeadFileError(StoreError):
    """The head file exists but does not contain a head."""

    def __init__(self, head_path: Path, detail: str) -> None:
        super().__init__(
            f"audit head file {head_path} is not valid: {detail}. edge-gate "
            "replaces it only whole, by a rename, so it was overwritten or "
            "damaged: copy audit.db and audit.head as evidence, move "
            "audit.head aside and start edge-gate again, which records the new "
            "head file in the audit log"
        )
        self.head_path = head_path
        self.detail = detail


class RowsInLostFileError(StoreError):
    """Rows were committed into the open ``audit.db`` after its path changed.

    The path was deleted, moved or replaced between the check before the
    transaction and its commit. The rows are in the open file only, so they
    reach the path again only if :meth:`AuditLog.check_file` copies that
    file. A caller that acts on a row (such as opening the barrier) must
    not act, and must record that it did not.

    Attributes:
        entries: the rows committed into the open file, in order.
    """

    def __init__(self, message: str, entries: Sequence[AuditEntry]) -> None:
        super().__init__(message)
        self.entries = list(entries)


class _DamagedRowError(ValueError):
    """A stored row that cannot be read back as an :class:`AuditRecord`."""


@dataclass(frozen=True)
class _Break:
    """A break in the chain that one check found, for :class:`VerifyResult`."""

    problem: str
    first_bad_seq: int | None = None
    cut_after_seq: int | None = None


class AuditLog(Closing):
    """Append-only, hash-chained audit log in one SQLite file.

    Safe to share between threads: one connection guarded by a lock.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """Open or create the audit log.

        Args:
            path: the ``audit.db`` file; its folder must exist.
            read_only: open an existing file for queries and verification
                only (field commands); never creates it.

        Raises:
            StoreError: the file cannot be opened or is not an audit log.
        """
        self.path = Path(path)
        self.head_path = self.path.with_name(AUDIT_HEAD_NAME)
        self._lock = threading.Lock()
        self._read_only = read_only
        self.head_problem = ""
        self._head_break: _Break | None = None
        # Why rows are not written (the path no longer names the opened
        # file) and why audit.head lags. Each is "" while nothing is wrong.
        self.file_problem = ""
        self.head_write_problem = ""
        # Device and inode of the file SQLite opened (writers only).
        self._file_id: tuple[int, int] | None = None
        self._lost = _LostFile()
        if read_only and not self.path.exists():
            raise StoreError(_missing_message(self.path, self.head_path))
        if read_only and self.path.is_file() and self.path.stat().st_size == 0:
            raise StoreError(
                f"audit log {self.path} is empty (0 bytes), so it was emptied "
                "or replaced: keep it and audit.head as evidence, and put the "
                "audit.db file back from a copy"
            )
        # SQLite reports a folder as "disk I/O error", which hides the fix.
        if self.path.exists() and not self.path.is_file():
            kind = "a folder" if self.path.is_dir() else "not a regular file"
            raise StoreError(
                f"audit log {self.path} is {kind}, but it must be the SQLite "
                "file audit.db: move it aside (keep it as evidence) and put "
                "the audit.db file back from a copy"
            )
        is_new = not self.path.exists()
        try:
            if read_only:
                uri = f"file:{self.path}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None
                )
            else:
                self._db = sqlite3.connect(
                    self.path, check_same_thread=False, isolation_level=None
                )
        except sqlite3.Error as err:
            raise StoreError(
                f"cannot open audit log {self.path}: {err}.{full_disk_text(self.path)}"
            ) from err
        self._db.text_factory = _decode_text
        try:
            self._prepare()
        except sqlite3.Error as err:
            self._db.close()
            # SQLite opens a file that this process cannot write in read-only
            # mode, and the first write then fails with SQLITE_READONLY (or an
            # extended code).
            # Errors that _prepare raises itself carry no error name.
            error_name = getattr(err, "sqlite_errorname", None) or ""
            if error_name.startswith("SQLITE_READONLY"):
                raise StoreError(
                    f"audit log {self.path} cannot be written: {err}. Make the "
                    "file and its folder writable for the user that runs "
                    "edge-gate, or check that the file system is mounted "
                    "read-write"
                ) from err
            full_disk = full_disk_text(self.path)
            if full_disk:
                raise StoreError(
                    f"cannot open audit log {self.path}: {err}.{full_disk}"
                ) from err
            raise StoreError(
                f"audit log {self.path} is unreadable or not an audit log: {err}"
            ) from err
        if not read_only:
            # Taken right after the open, so that a later move, delete or
            # replacement of the path shows as another identity.
            self._file_id = _file_identity(self.path)
            try:
                self._start_head_file(is_new)
            except StoreError:
                self._db.close()
                raise

    def _start_head_file(self, is_new: bool) -> None:
        """Compare the head file with the database, or start it."""
        head_break = self._find_head_break()
        if head_break is not None:
            if is_new:
                # The rows that the head file refers to were lost with the old
                # file, so the break names no row.
                head_break = _Break(
                    f"{self.path} was missing and has been created empty; "
                    + head_break.problem
                )
            self._head_break = head_break
            self.head_problem = head_break.problem
            logger.error("audit log head mismatch: %s", self.head_problem)
            return
        if not is_new and not self.head_path.exists():
            self._restart_head_file()
            return
        self._write_head_file(*self.head())

    def _restart_head_file(self) -> None:
        """Start a missing head file again, and record that in the log.

        Without the head file a cut at the end went unseen, so the ``service``
        row keeps the event inside the chain, where ``verify`` lists it.
        Appending the row also writes the new head file.
        """
        head_seq, head_hash = self.head()
        logger.warning(
            "audit head file %s is missing; starting it again at row %d, hash "
            "%s, and recording this in the audit log",
            self.head_path,
            head_seq,
            head_hash,
        )
        record = AuditRecord(
            time_utc=datetime.now(UTC),
            kind="service",
            transaction_id="",
            outcome="none",
            reason=(
                f"{HEAD_RESTART_REASON} at row {head_seq} (hash {head_hash}), "
                "so a new audit.head starts here. Rows cut from the end "
                "before this row cannot be detected: compare row "
                f"{head_seq} and its hash with the journal line 'audit log "
                "head at stop' of the previous run"
            ),
        )
        try:
            self.append(record)
        except StoreError as err:
            logger.error(
                "cannot record the restart of %s in the audit log: %s",
                self.head_path,
                err,
            )
            self._write_head_file(head_seq, head_hash)

    def _prepare(self) -> None:
        self._db.execute("PRAGMA busy_timeout = 5000")
        if self._read_only:
            self._check_schema()
            return

        # WAL keeps readers off the writer's back; FULL syncs the WAL on
        # every commit, so an acknowledged row survives a power cut.
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal_mode is {mode}, expected wal")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        # A new chain only on an empty log: rows without a chain record mean
        # the record was deleted, and a fresh genesis would hide that.
        rows = self._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        if rows == 0:
            self._db.execute(
                "INSERT OR IGNORE INTO chain VALUES (1, ?, 0, ?, 0, ?)",
                (SCHEMA_VERSION, GENESIS_HASH, GENESIS_HASH),
            )
        self._check_schema()

    def _check_schema(self) -> None:
        row = self._db.execute(
            "SELECT schema_version FROM chain WHERE id = 1"
        ).fetchone()
        if row is None:
            if self._read_only:
                # verify() reports it as a broken chain.
                return
            raise sqlite3.DatabaseError(
                "the chain table has no head record although audit rows exist; "
                "run edge-gate log verify --offline and keep the file as evidence"
            )
        if row[0] != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {row[0]}, this edge-gate reads {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        """Close the database; safe to call more than once."""
        with self._lock:
            self._db.close()

    def append(self, record: AuditRecord) -> AuditEntry:
        """Write one record durably and chain it to the previous row.

        Returns:
            The stored row with its sequence number and hash.

        Raises:
            ValueError: the record has a naive time, an unknown kind or
                outcome, a text field over 500 characters, or a
                non-finite number.
            RowsInLostFileError: the path changed between the check and
                the commit, so the row is in the opened file only.
            StoreError: SQLite failed (disk full, read-only, corrupt), or
                the path no longer names the opened file (see
                :meth:`append_many`); the row was not written to the path.
        """
        (entry,) = self.append_many([record])
        return entry

    def append_many(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        """Write records in order, in one transaction, and chain them.

        One commit costs one ``fsync``, so this is how the daemon replays a
        large audit spool at start. Either every record is written or none.

        Returns:
            The stored rows, in the order given.

        Raises:
            ValueError: a record is invalid (see :meth:`append`); nothing was
                written.
            RowsInLostFileError: the path changed between the check and
                the commit. The rows are in the opened file only, and the
                caller must keep them.
            StoreError: SQLite failed, or the path no longer names the
                opened file, and nothing was written.
        """
        rows = [record.to_json_dict() for record in records]
        for record in records:
            _validate(record)
        if not records:
            return []
        entries: list[AuditEntry] = []
        rows_text = "a row" if len(records) == 1 else f"{len(records)} rows"
        # Read without the lock, which check_file holds while it copies.
        known_problem = self.file_problem
        if known_problem:
            raise StoreError(
                f"cannot append {rows_text} to the audit log: {known_problem}"
            )
        with self._lock:
            # Rows written into a deleted or moved file would be lost with it.
            problem = self._check_file_locked()
            if problem:
                raise StoreError(
                    f"cannot append {rows_text} to the audit log: {problem}"
                )
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq, row_hash = self._read_head()
                for record, values in zip(records, rows, strict=True):
                    prev_hash = row_hash
                    seq += 1
                    row_hash = _row_hash(seq, prev_hash, values)
                    self._db.execute(
                        "INSERT INTO audit VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, *_row_columns(values), prev_hash, row_hash),
                    )
                    entries.append(
                        AuditEntry(seq=seq, record=record, row_hash=row_hash)
                    )
                self._db.execute(
                    "UPDATE chain SET head_seq = ?, head_hash = ? WHERE id = 1",
                    (seq, row_hash),
                )
                self._db.execute("COMMIT")
            except BaseException as err:
                # Any failure inside the transaction, not only SQLite's,
                # must end it: the next append would find it still open.
                self._rollback()
                if not isinstance(err, sqlite3.Error):
                    raise
                message = f"cannot append {rows_text} to audit log {self.path}: {err}"
                if (getattr(err, "sqlite_errorname", None) or "") == "SQLITE_FULL":
                    message += "." + full_disk_text(self.path, is_write=True)
                raise StoreError(message) from err
            # The path changed between the check and the commit. The rows are
            # in the open file, which check_file copies, but the caller keeps
            # them too, because the copy may fail.
            if _file_identity(self.path) != self._file_id:
                problem = self._check_file_locked()
                raise RowsInLostFileError(
                    f"{rows_text} went into the audit log file that edge-gate "
                    f"has open, which is no longer at {self.path}: {problem}",
                    entries,
                )
            # After the commit: a kill in between leaves the file one commit
            # behind, which the comparison tolerates.
            if not self.head_problem:
                self._write_head_file(seq, row_hash)
        return entries

    def check_file(self) -> str:
        """Check that the path names the opened file, and retry a lagging head file.

        The daemon calls this every second. When ``audit.db`` was deleted,
        moved or replaced, the rows of the open file are copied with SQLite's
        backup: back to the path when it is free, beside it otherwise. A
        failed copy, or a copy deleted, moved or replaced in turn, is made
        again at the next call. While the path names
        another file, :meth:`append_many` writes nothing.

        Returns:
            :attr:`file_problem`: why no row is written, or "".
        """
        with self._lock:
            problem = self._check_file_locked(may_copy=True)
            if not problem and self.head_write_problem and not self.head_problem:
                try:
                    self._write_head_file(*self._read_head())
                except sqlite3.Error as err:
                    logger.error("cannot read audit log %s: %s", self.path, err)
            return problem

    def _check_file_locked(self, *, may_copy: bool = False) -> str:
        """Compare the path's identity with the opened file's, holding ``_lock``.

        Args:
            may_copy: copy the open file's rows when the path changed. Only
                :meth:`check_file` does, because a large copy would stall a
                caller with a short deadline such as the lane thread.
        """
        if self._read_only or self._file_id is None:
            return ""
        current = _file_identity(self.path)
        if current == self._file_id:
            if self.file_problem:
                logger.warning("audit log %s is back in place", self.path)
            self.file_problem = ""
            self._lost = _LostFile()
            return ""
        if not self._lost.path_change:
            self._lost.path_change = (
                "was deleted or moved away"
                if current is None
                else "was replaced by another file"
            )
        self._check_copy(current)
        # Set before the copy, so that appends fail at once instead of
        # waiting for the lock during the copy.
        self._set_file_problem(self._lost.describe(self.path))
        if self._lost.copy_path is None and may_copy:
            self._save_open_copy()
            self._set_file_problem(self._lost.describe(self.path))
        return self.file_problem

    def _check_copy(self, current: tuple[int, int] | None) -> None:
        """Forget a copy of the open file that its path no longer names.

        A second ``rm -rf`` of the state folder, or a deleted
        ``audit.db.saved-TIME``, removes the copy, so the next copy pass
        must make a new one.

        Args:
            current: the identity of the file at :attr:`path` now.
        """
        copy_path = self._lost.copy_path
        copy_id = self._lost.copy_id
        if copy_path is None or copy_id is None:
            return
        if _file_identity(copy_path) == copy_id:
            return
        # The engineer moved the saved copy to the path: it is still there.
        if current == copy_id:
            self._lost.copy_path = self.path
            return
        logger.error(
            "the copy %s of the open audit log was deleted, moved or "
            "replaced, so edge-gate copies the open file again",
            copy_path,
        )
        self._lost.lost_copy_path = copy_path
        self._lost.copy_path = None
        self._lost.copy_id = None
        self._lost.is_copy_tried = False

    @property
    def unsaved_head_seq(self) -> int | None:
        """The last row that is in the open file only, or None.

        None while the path names the open file or a copy of it exists.
        Closing the log loses the rows up to this one.
        """
        with self._lock:
            if not self.file_problem or self._lost.copy_path is not None:
                return None
            with contextlib.suppress(sqlite3.Error):
                return self._read_head()[0]
            return self._lost.head_seq

    def _set_file_problem(self, problem: str) -> None:
        if problem != self.file_problem:
            logger.error("audit log not writable: %s", problem)
        self.file_problem = problem

    def _save_open_copy(self) -> None:
        """Copy the open file's rows to a new file, at the path when it is free.

        The backup reads through the open connection, so it includes the
        rows still in the deleted ``-wal`` file. A deleted state folder is
        created again (mode 0700), as the daemon's start would.
        """
        folder = self.path.parent
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        copy_path = folder / f"{self.path.name}.saved-{stamp}"
        self._lost.is_copy_tried = True
        try:
            head_seq, head_hash = self._read_head()
            self._lost.head_seq = head_seq
            folder.mkdir(mode=0o700, exist_ok=True)
            with contextlib.closing(sqlite3.connect(copy_path)) as target:
                self._db.backup(target)
            sync_folder(folder)
        except (OSError, sqlite3.Error) as err:
            for leftover in (
                copy_path,
                copy_path.with_name(copy_path.name + "-journal"),
            ):
                # Absent, or its folder is missing or not a folder.
                with contextlib.suppress(OSError):
                    leftover.unlink()
            self._lost.copy_error = str(err)
            return
        self._lost.copy_error = ""
        self._lost.copy_path = copy_path
        self._lost.copy_id = _file_identity(copy_path)
        # A link, not a rename: it never replaces a file put there meanwhile.
        try:
            os.link(copy_path, self.path)
        except OSError as err:
            logger.warning("cannot put the copy back at %s: %s", self.path, err)
            return
        self._lost.copy_path = self.path
        try:
            copy_path.unlink()
            sync_folder(folder)
        except OSError as err:
            logger.warning(
                "cannot remove the copy's second name %s: %s", copy_path, err
            )
        if not self.head_problem:
            self._write_head_file(head_seq, head_hash)

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        outcome: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Return rows in time order, newest last.

        Args:
            since: earliest time, inclusive (timezone-aware).
            until: latest time, exclusive (timezone-aware).
            outcome: only rows with this outcome.
            kind: only rows of this kind.
            limit: the newest ``limit`` matching rows (1 to 100,000).

        Raises:
            ValueError: a naive time or a limit out of range.
            StoreError: SQLite failed.
        """
        if not 1 <= limit <= 100_000:
            raise ValueError(f"limit {limit} is out of range; use 1 to 100000")
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("time_utc >= ?")
            params.append(_format_time(since))
        if until is not None:
            clauses.append("time_utc < ?")
            params.append(_format_time(until))
        if outcome is not None:
            clauses.append("outcome = ?")
            params.append(outcome)
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT * FROM (SELECT * FROM audit {where} "  # noqa: S608 - fixed clauses
            "ORDER BY seq DESC LIMIT ?) ORDER BY seq"
        )
        with self._lock:
            try:
                rows = self._db.execute(sql, (*params, limit)).fetchall()
            except sqlite3.Error as err:
                raise StoreError(f"cannot query audit log {self.path}: {err}") from err
        return [_read_entry(row) for row in rows]

    def contains(self, record: AuditRecord) -> bool:
        """Return whether a row with exactly this record's contents exists.

        Only rows with the same ``time_utc`` are compared, through the time
        index, so the check is cheap.

        Raises:
            ValueError: the record has a naive time.
            StoreError: SQLite failed.
        """
        values = record.to_json_dict()
        since = _parse_time(values["time_utc"])
        rows = self.query(
            since=since, until=since + timedelta(microseconds=1), limit=100_000
        )
        return any(
            not entry.damage and entry.record.to_json_dict() == values for entry in rows
        )

    def head(self) -> tuple[int, str]:
        """Return the newest row's sequence number and hash (0 and zeros if empty)."""
        with self._lock:
            try:
                return self._read_head()
            except sqlite3.Error as err:
                raise StoreError(f"cannot read audit log {self.path}: {err}") from err

    def _read_head(self) -> tuple[int, str]:
        row = self._db.execute(
            "SELECT head_seq, head_hash FROM chain WHERE id = 1"
        ).fetchone()
        if row is None:
            raise sqlite3.DatabaseError(
                f"the chain table of {self.path} has no head record"
            )
        return int(row[0]), str(row[1])

    def read_head_file(self) -> tuple[int, str] | None:
        """Return the sequence number and hash in the head file, or None.

        Returns:
            None when the head file does not exist.

        Raises:
            StoreError: the head file exists but cannot be read, or its
                contents are not a head (then the error is the subclass
                that :meth:`verify` reports as a broken chain).
        """
        data_bytes = self._read_head_bytes()
        if data_bytes is None:
            return None
        try:
            text = data_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise _InvalidHeadFileError(self.head_path, "it is not UTF-8") from None
        if not text.strip():
            raise _InvalidHeadFileError(self.head_path, "it is empty")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise _InvalidHeadFileError(self.head_path, "it is not JSON") from None
        seq = data.get("head_seq") if isinstance(data, dict) else None
        row_hash = data.get("head_hash") if isinstance(data, dict) else None
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise _InvalidHeadFileError(
                self.head_path, "head_seq is not a whole number of 0 or more"
            )
        if seq > MAX_SEQ:
            raise _InvalidHeadFileError(
                self.head_path,
                f"head_seq is out of range (over {MAX_SEQ}, the largest row "
                "number SQLite stores)",
            )
        if not isinstance(row_hash, str) or not _is_sha256_hex(row_hash):
            raise _InvalidHeadFileError(
                self.head_path, "head_hash is not 64 hexadecimal digits"
            )
        return seq, row_hash

    def _read_head_bytes(self) -> bytes | None:
        """Return the head file's bytes, or None when it does not exist.

        The file is opened without blocking and must be a regular file, so a
        FIFO or a device put in its place cannot stall the daemon's start or
        ``log verify``.

        Raises:
            StoreError: the file cannot be read (then it names the fix), or
                it is not a regular file or is too large (the subclass that
                :meth:`verify` reports as a broken chain).
        """
        try:
            descriptor = os.open(self.head_path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreError(
                f"cannot read audit head file {self.head_path}: {err}. Make it "
                "readable for the user that runs edge-gate, or run the "
                "command as that user"
            ) from err
        try:
            mode = os.fstat(descriptor).st_mode
            if stat.S_ISDIR(mode):
                raise _InvalidHeadFileError(self.head_path, "it is a folder")
            if not stat.S_ISREG(mode):
                raise _InvalidHeadFileError(
                    self.head_path, "it is not a regular file (a FIFO or a device)"
                )
            with os.fdopen(descriptor, "rb", closefd=False) as handle:
                data = handle.read(MAX_HEAD_FILE_BYTES + 1)
        except OSError as err:
            raise StoreError(
                f"cannot read audit head file {self.head_path}: {err}. Make it "
                "readable for the user that runs edge-gate, or run the "
                "command as that user"
            ) from err
        finally:
            os.close(descriptor)
        if len(data) > MAX_HEAD_FILE_BYTES:
            raise _InvalidHeadFileError(
                self.head_path, f"it is over {MAX_HEAD_FILE_BYTES} bytes"
            )
        return data

    def _write_head_file(self, seq: int, row_hash: str) -> None:
        """Replace the head file atomically (temporary file, fsync, rename)."""
        text = json.dumps({"head_seq": seq, "head_hash": row_hash}) + "\n"
        temporary = self.head_path.with_name(self.head_path.name + ".tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.head_path)
            sync_folder(self.head_path.parent)
        except OSError as err:
            # The row is committed; verify() tolerates a head file behind,
            # but a cut at the end goes unseen until the file is written.
            problem = (
                f"cannot write audit head file {self.head_path}: {err}. Rows "
                "are still written to audit.db, but rows cut from its end "
                "would go unseen: make the folder writable and free space "
                "there; edge-gate writes the file again every second"
            )
            if problem != self.head_write_problem:
                logger.error("%s", problem)
            self.head_write_problem = problem
            return
        if self.head_write_problem:
            logger.info("audit head file %s is written again", self.head_path)
        self.head_write_problem = ""

    def _find_head_break(self) -> _Break | None:
        """Compare the head file with the database, and return the break or None.

        Steps:
            1. No head file, or one at row 0: nothing to compare.
            2. The database's head is behind the file: rows were deleted from
               the end, or the file was rolled back or replaced.
            3. The file's row is still in the database (or is the anchor of
               pruned rows): its hash must match the file's hash.

        Raises:
            StoreError: the head file is unreadable or SQLite failed.
        """
        recorded = self.read_head_file()
        if recorded is None or recorded[0] == 0:
            return None
        file_seq, file_hash = recorded
        with self._lock:
            try:
                chain = self._db.execute(
                    "SELECT anchor_seq, anchor_hash, head_seq FROM chain WHERE id = 1"
                ).fetchone()
                row = self._db.execute(
                    "SELECT row_hash FROM audit WHERE seq = ?", (file_seq,)
                ).fetchone()
            except sqlite3.Error as err:
                raise StoreError(f"cannot read audit log {self.path}: {err}") from err
        if chain is None:
            return _Break(
                f"the chain table has no head record, but {self.head_path} "
                f"records row {file_seq}"
            )
        anchor_seq, anchor_hash, head_seq = chain
        if head_seq < file_seq:
            return _Break(
                f"the log ends at row {head_seq}, but {self.head_path} records "
                f"row {file_seq}: {_rows(head_seq + 1, file_seq, 'was', 'were')} "
                "deleted from the end, or audit.db was rolled back or replaced",
                first_bad_seq=head_seq + 1,
                cut_after_seq=head_seq,
            )
        if row is not None:
            stored_hash = row[0]
        elif file_seq == anchor_seq:
            stored_hash = anchor_hash
        elif file_seq < anchor_seq:
            # Pruned since the file was written; the anchor is checked instead.
            return None
        else:
            return _Break(
                f"row {file_seq}, recorded in {self.head_path}, is missing",
                first_bad_seq=file_seq,
            )
        if stored_hash != file_hash:
            return _Break(
                f"row {file_seq} hashes differently from {self.head_path}: "
                "the chain was rewritten",
                first_bad_seq=file_seq,
            )
        return None

    def verify(self) -> VerifyResult:
        """Check the whole hash chain.

        Steps:
            1. SQLite checks the file itself (``PRAGMA quick_check``): a file
               cut or overwritten outside SQLite is ``damaged``, and its rows
               are not checked one by one.
            2. Read the anchor and head from the ``chain`` table.
            3. Walk the rows by sequence number: each must follow the
               previous one without a gap, carry the previous hash as
               ``prev_hash``, read back as a record, and hash to its stored
               ``row_hash``.
            4. The last row must be the recorded head, so deleting the
               newest rows is found as well.
            5. The head must not be behind the head file ``audit.head``, so
               deleting the newest rows together with the chain record, or
               replacing the whole file, is found too. A head file that is
               not valid is a break.
            6. A missing head file leaves step 5 undone, so the verdict is
               ``end_unverified``.

        Returns:
            The result; a broken chain is a result, not an exception.

        Raises:
            StoreError: SQLite failed to read the file for a reason other
                than damage, or the head file cannot be read (permissions).
        """
        damage = self._find_file_damage()
        if damage:
            return VerifyResult(False, 0, 0, "", problem=damage, verdict="damaged")
        with self._lock:
            try:
                chain = self._db.execute(
                    "SELECT anchor_seq, anchor_hash, head_seq, head_hash "
                    "FROM chain WHERE id = 1"
                ).fetchone()
                rows = self._db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
            except sqlite3.Error as err:
                if _is_damage(err):
                    return VerifyResult(
                        False,
                        0,
                        0,
                        "",
                        problem=self._damage_text([str(err)]),
                        verdict="damaged",
                    )
                raise StoreError(f"cannot read audit log {self.path}: {err}") from err
        if chain is None:
            return VerifyResult(
                False,
                0,
                0,
                "",
                problem=(
                    f"the chain table has no head record ({len(rows)} audit rows "
                    "remain): the chain record was deleted or the file replaced"
                ),
                verdict="broken",
            )
        anchor_seq, anchor_hash, head_seq, head_hash = chain
        walk = _walk_rows(rows, anchor_seq, anchor_hash)

        def reported(found: _Break, checked: int) -> VerifyResult:
            return VerifyResult(
                False,
                checked,
                head_seq,
                head_hash,
                found.first_bad_seq,
                found.problem,
                found.cut_after_seq,
                verdict="broken",
                head_restart_seqs=walk.head_restart_seqs,
            )

        if walk.found is not None:
            return reported(walk.found, walk.rows_checked)
        tail_break = _check_tail(walk.last_seq, walk.last_hash, head_seq, head_hash)
        if tail_break is not None:
            return reported(tail_break, len(rows))
        # A problem found at open stays reported, even once a new chain has
        # grown past the old head.
        head_break = self._head_break
        if head_break is None:
            try:
                head_break = self._find_head_break()
            except _InvalidHeadFileError as err:
                head_break = _Break(
                    f"{err.head_path} is not valid ({err.detail}), so rows cut "
                    "from the end cannot be detected. edge-gate replaces it "
                    "only whole, by a rename, so it was overwritten or damaged"
                )
        if head_break is not None:
            return reported(head_break, len(rows))
        if not self.head_path.exists():
            return VerifyResult(
                False,
                len(rows),
                head_seq,
                head_hash,
                problem=(
                    f"{self.head_path} is missing, so rows cut from the end of "
                    "the log cannot be detected"
                ),
                verdict="end_unverified",
                head_restart_seqs=walk.head_restart_seqs,
            )
        return VerifyResult(
            True,
            len(rows),
            head_seq,
            head_hash,
            head_restart_seqs=walk.head_restart_seqs,
        )

    def _find_file_damage(self) -> str:
        """Run SQLite's ``quick_check``; return what it found, or "" if none.

        Raises:
            StoreError: SQLite failed for a reason other than damage.
        """
        with self._lock:
            try:
                found = [
                    str(row[0]) for row in self._db.execute("PRAGMA quick_check(5)")
                ]
            except sqlite3.Error as err:
                if not _is_damage(err):
                    raise StoreError(
                        f"cannot check audit log {self.path}: {err}"
                    ) from err
                found = [str(err)]
        if found == ["ok"]:
            return ""
        return self._damage_text(found)

    def _damage_text(self, found: Sequence[str]) -> str:
        # quick_check heads its list with "*** in database main ***".
        lines = [
            line
            for text in found
            for line in text.splitlines()
            if line.strip() and not line.startswith("***")
        ]
        return (
            f"{self.path} is damaged: it was cut or overwritten outside "
            f"SQLite, so its rows cannot be checked. SQLite reports: "
            f"{'; '.join(lines)}"
        )

    def prune(self, retention_days: int, *, now: datetime | None = None) -> int:
        """Delete rows older than the retention period, keeping the chain valid.

        The hash of the newest deleted row becomes the chain's anchor, in the
        same transaction as the delete.

        Args:
            retention_days: keep rows younger than this many days (at least 1).
            now: the current UTC time (default: the system clock).

        Returns:
            The number of rows deleted.

        Raises:
            ValueError: retention_days is below 1 or now is naive.
            StoreError: SQLite failed; nothing was deleted.
        """
        if retention_days < 1:
            raise ValueError(f"retention_days {retention_days} must be at least 1")
        cutoff = _format_time(
            (now or datetime.now(UTC)) - timedelta(days=retention_days)
        )
        with self._lock:
            problem = self._check_file_locked(may_copy=True)
            if problem:
                raise StoreError(f"cannot prune the audit log: {problem}")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                last = self._db.execute(
                    "SELECT seq, row_hash FROM audit WHERE seq = "
                    "(SELECT MAX(seq) FROM audit WHERE time_utc < ?)",
                    (cutoff,),
                ).fetchone()
                if last is None:
                    self._db.execute("COMMIT")
                    return 0
                deleted = self._db.execute(
                    "DELETE FROM audit WHERE seq <= ?", (last[0],)
                ).rowcount
                self._db.execute(
                    "UPDATE chain SET anchor_seq = ?, anchor_hash = ? WHERE id = 1",
                    (last[0], last[1]),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise StoreError(f"cannot prune audit log {self.path}: {err}") from err
        logger.info("pruned %d audit rows older than %d days", deleted, retention_days)
        return int(deleted)

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            logger.debug("no transaction to roll back on %s", self.path)


@dataclass
class _LostFile:
    """State of an opened ``audit.db`` that its path no longer names."""

    path_change: str = ""
    is_copy_tried: bool = False
    head_seq: int = 0
    copy_path: Path | None = None
    # Device and inode of the copy, to notice when it is deleted in turn.
    copy_id: tuple[int, int] | None = None
    # An earlier copy that was deleted, moved or replaced in turn.
    lost_copy_path: Path | None = None
    copy_error: str = ""

    def describe(self, path: Path) -> str:
        """Return the problem and the engineer's next step, for a service hold."""
        text = (
            f"audit log {path} {self.path_change} while edge-gate ran, so edge-gate "
            "writes no row into the file it still has open"
        )
        if self.lost_copy_path is not None:
            text += (
                f". Its earlier copy {self.lost_copy_path} was deleted, moved "
                "or replaced too"
            )
        if not self.is_copy_tried:
            return (
                f"{text}. It copies that file's rows to {path.parent} within a second"
            )
        rows = f"rows (up to row {self.head_seq})"
        if self.copy_path == path:
            return (
                f"{text}. It copied that file's {rows} back to {path}: restart "
                "edge-gate.service to go on with that copy"
            )
        if self.copy_path is not None:
            return (
                f"{text}. It saved that file's {rows} as {self.copy_path}: stop "
                "edge-gate.service, keep both files as evidence, put the audit "
                f"log to keep at {path}, and start the service again"
            )
        return (
            f"{text}. It cannot copy that file's {rows} into {path.parent} "
            f"({self.copy_error}) and retries every second. Make {path.parent} "
            "a writable folder with free space, and keep edge-gate.service "
            "running until the copy is made, because a stop loses the rows of "
            "the open file"
        )


def _file_identity(path: Path) -> tuple[int, int] | None:
    """Return the device and inode numbers of ``path``, or None if it is gone."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _check_tail(
    last_seq: int, last_hash: str, head_seq: int, head_hash: str
) -> _Break | None:
    """Compare the last row that chains correctly with the chain's head record.

    Args:
        last_seq: the last row of the unbroken chain (the anchor's sequence
            number when no row is left).
        last_hash: that row's hash (the anchor's hash when no row is left).
        head_seq: the head row recorded in the ``chain`` table.
        head_hash: the head hash recorded in the ``chain`` table.

    Returns:
        The break, or None when the last row is the recorded head.
    """
    if last_seq < head_seq:
        return _Break(
            f"the log ends at row {last_seq}, but the chain head is row "
            f"{head_seq}: {_rows(last_seq + 1, head_seq, 'was', 'were')} deleted "
            "from the end",
            first_bad_seq=last_seq + 1,
            cut_after_seq=last_seq,
        )
    if last_seq > head_seq:
        return _Break(
            f"{_rows(head_seq + 1, last_seq, 'follows', 'follow')} the chain "
            f"head row {head_seq}: the head record was moved back, or rows were "
            "added outside the audit log",
            first_bad_seq=head_seq + 1,
        )
    if last_hash != head_hash:
        return _Break(
            f"row {head_seq} hashes differently from the chain head record: "
            "the row or the head record was rewritten",
            first_bad_seq=head_seq,
        )
    return None


@dataclass(frozen=True)
class _Walk:
    """Result of :func:`_walk_rows`: the end of the unbroken chain, or a break."""

    rows_checked: int
    last_seq: int
    last_hash: str
    head_restart_seqs: tuple[int, ...]
    found: _Break | None = None


def _walk_rows(
    rows: Sequence[Sequence[Any]], anchor_seq: int, anchor_hash: str
) -> _Walk:
    """Check each row against the one before it, from the anchor on.

    Returns:
        The first break, or the last row that chains correctly (the anchor
        when no row is left), with the rows that record a restarted head file.
    """
    restarts: list[int] = []
    expected_seq, expected_prev = anchor_seq + 1, anchor_hash
    for checked, row in enumerate(rows):
        seq, prev_hash, row_hash = row[0], row[14], row[15]
        found: _Break | None = None
        if seq != expected_seq:
            found = _Break(
                f"row {expected_seq} is missing (next is {seq})", expected_seq
            )
        elif prev_hash != expected_prev:
            found = _Break(f"row {seq} does not link to row {seq - 1}", seq)
        else:
            try:
                record = _entry_from_row(row).record
            except _DamagedRowError as err:
                found = _Break(
                    f"row {seq} was changed after it was written: {err}", seq
                )
            else:
                if _row_hash(seq, prev_hash, record.to_json_dict()) != row_hash:
                    found = _Break(f"row {seq} was changed after it was written", seq)
                elif record.kind == "service" and record.reason.startswith(
                    HEAD_RESTART_REASON
                ):
                    restarts.append(seq)
        if found is not None:
            return _Walk(
                checked, expected_seq - 1, expected_prev, tuple(restarts), found
            )
        expected_seq, expected_prev = seq + 1, row_hash
    return _Walk(len(rows), expected_seq - 1, expected_prev, tuple(restarts))


def _is_damage(err: sqlite3.Error) -> bool:
    """Return whether SQLite failed because the file itself is damaged."""
    name = getattr(err, "sqlite_errorname", None) or ""
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _is_sha256_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _rows(first_seq: int, last_seq: int, singular: str, plural: str) -> str:
    """Return a row range with its verb, e.g. "row 5 was" or "rows 5 to 9 were"."""
    if first_seq == last_seq:
        return f"row {first_seq} {singular}"
    return f"rows {first_seq} to {last_seq} {plural}"


def _missing_message(path: Path, head_path: Path) -> str:
    message = (
        f"audit log {path} not found; it is audit.db in the [store] state_dir "
        f"setting ({path.parent})"
    )
    if head_path.exists():
        message += (
            f", and {head_path} records rows that existed: the audit log was "
            "deleted or moved. Keep audit.head as evidence and put audit.db "
            "back from a copy"
        )
    else:
        message += ": check the setting, or whether the daemon has run yet"
    return message


def _validate(record: AuditRecord) -> None:
    if record.time_utc.tzinfo is None:
        raise ValueError("audit record time_utc must be timezone-aware (UTC)")
    if record.kind not in RECORD_KINDS:
        raise ValueError(
            f"audit record kind {record.kind!r} is not one of {RECORD_KINDS}"
        )
    if record.outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {record.outcome!r} is not one of {OUTCOMES}")
    texts = {
        "transaction_id": record.transaction_id,
        "lane_id": record.lane_id,
        "issuing_state": record.issuing_state,
        "document_number": record.document_number,
        "reason": record.reason,
        **{f"alarm {i}": alarm for i, alarm in enumerate(record.alarms)},
    }
    numbers: list[tuple[str, Any]] = [("latency_ms", record.latency_ms)]
    for group in ("scores", "thresholds", "durations_ms"):
        numbers += [(f"{group}.{k}", v) for k, v in getattr(record, group).items()]
        texts.update({f"{group} name {k!r}": k for k in getattr(record, group)})
    for name, text in texts.items():
        if not isinstance(text, str):
            raise ValueError(
                f"audit field {name} must be text, got {type(text).__name__}"
            )
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"audit field {name} is over {MAX_TEXT_CHARS} characters")
        # A lone surrogate (valid in JSON and in Python text) has no UTF-8
        # form, so the row hash and SQLite could not store it.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(
                f"audit field {name} is not valid Unicode text: character "
                f"{err.start} is a lone surrogate"
            ) from None
    for name, value in numbers:
        if value is None and name == "latency_ms":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"audit field {name} must be a number, not bytes or text")
        # AuditRecord turns whole numbers into floats; one left over is too
        # large for a float, and SQLite could not store it either.
        if isinstance(value, int):
            raise ValueError(
                f"audit field {name} is a whole number of {value.bit_length()} "
                "bits, too large for a float; send a number below 1.8e308"
            )
        if not math.isfinite(value):
            raise ValueError(f"audit field {name} is {value}, not a finite number")


def _clean_text(text: object) -> str:
    """Return ``text`` as valid Unicode of at most ``MAX_TEXT_CHARS`` characters."""
    cleaned = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return cleaned[:MAX_TEXT_CHARS]


def _is_finite_number(value: object) -> bool:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        return is_number and math.isfinite(value)  # type: ignore[arg-type]
    except OverflowError:
        return False  # a whole number too large for a float


def _is_whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_float(value: Any) -> Any:
    """Return a whole number as a float; anything else, or a too large one, as is."""
    if not _is_whole_number(value):
        return value
    try:
        return float(value)
    except OverflowError:
        return value


def _is_utf8(text: str) -> bool:
    """Return whether ``text`` has a UTF-8 form (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode_text(data: bytes) -> str:
    """Decode a TEXT value; bytes that are not UTF-8 become lone surrogates.

    SQLite's own decoding fails the whole query on one such value. Lone
    surrogates fail the record checks instead, so only that row is damaged.
    """
    return data.decode("utf-8", "surrogateescape")


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} must be timezone-aware (UTC)")
    # Fixed width with microseconds, so text order is time order.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def canonical_json(values: Mapping[str, Any]) -> bytes:
    """Return ``values`` as canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def _row_hash(seq: int, prev_hash: str, values: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json({"seq": seq, **values}))
    return digest.hexdigest()


def _row_columns(values: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        values["time_utc"],
        values["kind"],
        values["lane_id"],
        values["transaction_id"],
        values["issuing_state"],
        values["document_number"],
        values["outcome"],
        values["reason"],
        json.dumps(values["alarms"]),
        json.dumps(values["scores"]),
        json.dumps(values["thresholds"]),
        json.dumps(values["durations_ms"]),
        values["latency_ms"],
    )


def _entry_from_row(row: Sequence[Any]) -> AuditEntry:
    """Read one ``audit`` row back as an entry, checking every column.

    Raises:
        _DamagedRowError: a column cannot be read back (not valid JSON, a
            malformed time, a wrong type), or the record fails the checks
            of :meth:`AuditLog.append`. The message names the column.
    """
    values: dict[str, Any] = dict(zip(_COLUMNS, row[1:14], strict=True))
    for name, value in values.items():
        # _decode_text turned such bytes into lone surrogates.
        if isinstance(value, str) and not _is_utf8(value):
            raise _DamagedRowError(
                f"audit field {name} contains bytes that are not UTF-8"
            )
    for name in ("alarms", "scores", "thresholds", "durations_ms"):
        try:
            values[name] = json.loads(values[name])
        except (TypeError, ValueError, RecursionError):
            raise _DamagedRowError(f"audit field {name} is not valid JSON") from None
    try:
        record = AuditRecord.from_json_dict(values)
    except (TypeError, ValueError) as err:
        raise _DamagedRowError(str(err)) from None
    # The hash covers the parsed record, but queries compare the stored text
    # (the time filters), so each column must hold exactly what the writer
    # stores: "2026-12-5T..." reads as the same time yet escapes a filter.
    written = _row_columns(record.to_json_dict())
    for name, stored, expected in zip(_COLUMNS, row[1:14], written, strict=True):
        if stored != expected or type(stored) is not type(expected):
            # The column only: the value may be a document number.
            raise _DamagedRowError(
                f"audit field {name} is not stored in the form the audit log writes"
            )
    return AuditEntry(seq=int(row[0]), record=record, row_hash=str(row[15]))


def _read_entry(row: Sequence[Any]) -> AuditEntry:
    """Read one ``audit`` row, or mark it damaged when it cannot be read."""
    try:
        return _entry_from_row(row)
    except _DamagedRowError as err:
        seq = int(row[0])
        # The row number only: the message may quote a score or a time.
        logger.warning("audit row %d cannot be read back", seq)
        damage = (
            f"row {seq} cannot be read ({err}); run edge-gate log verify, "
            "which reports it as changed after it was written"
        )
        placeholder = AuditRecord(
            time_utc=datetime(1970, 1, 1, tzinfo=UTC),
            kind="service",
            transaction_id="",
            outcome="none",
            reason=_clean_text(damage),
        )
        row_hash = row[15] if isinstance(row[15], str) else ""
        return AuditEntry(seq, placeholder, row_hash, damage=damage)


# The columns of the audit table between seq and prev_hash.
_COLUMNS = (
    "time_utc",
    "kind",
    "lane_id",
    "transaction_id",
    "issuing_state",
    "document_number",
    "outcome",
    "reason",
    "alarms",
    "scores",
    "thresholds",
    "durations_ms",
    "latency_ms",
)
# The keys of AuditRecord.to_json_dict, the same names.
_RECORD_KEYS = frozenset(_COLUMNS)
