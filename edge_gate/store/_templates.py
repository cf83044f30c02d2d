"""The lane daemon's read side of ``templates.db``.

:class:`TemplateStore` finds enrolments by document, serves the watchlist
gallery and reports the template version and its freshness. It never writes:
``edge-gate sync`` is the only writer. Every query runs inside one read
transaction, so a bundle committed meanwhile is seen either completely or
not at all.

Until the first sync has created the file, the store reads as empty with
version 0 and no update time, which the daemon treats as out of service.

A store sealed with another template key is rejected before any template
is opened: :meth:`TemplateStore.lookup` and the watchlist reads raise
:class:`StoreError` with what to do, and :meth:`TemplateStore.status`
reports it in :attr:`TemplateStatus.key_problem`.

The store reads the file it opened until it is closed. When the path later
names another file, or none (the file was moved aside and maybe synced
again), :meth:`TemplateStore.status` reports it in
:attr:`TemplateStatus.file_problem`, and enrolment lookups and watchlist
reads raise :class:`StoreError`, so that nothing is decided on the old
file. The store does not reopen the path by itself: the daemon builds its
watchlist gallery when it loads, and is restarted instead.
"""

from __future__ import annotations

import datetime
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from edge_gate._closing import Closing
from edge_gate.errors import StoreError

from ._crypto import TemplateCipher
from ._schema import (
    KEY_CHECK,
    connect,
    key_mismatch_text,
    move_aside_text,
    stored_key_check,
    template_key_problem,
)

logger = logging.getLogger(__name__)

TEMPLATES_DB = "templates.db"

# Tries at opening the path while it does not change under the open.
_OPEN_TRIES = 3


@dataclass(frozen=True)
class Enrolment:
    """One enrolment found by document, with decrypted templates.

    ``fingerprints`` maps finger positions (``right_index``) and ``irises``
    maps eyes (``left``, ``right``) to template bytes.
    """

    enrolment_id: str
    person_id: str
    issuing_state: str
    document_number: str
    document_expiry: datetime.date
    enrolment_expiry: datetime.date
    revoked: bool
    watchlisted: bool
    fingerprints: dict[str, bytes] = field(default_factory=dict)
    irises: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateStatus:
    """Template version, counts and freshness of one store.

    ``updated_at`` is when ``edge-gate sync`` last verified the store as
    current against the server. ``expires_at`` is when the update metadata
    it verified expires. ``published_at`` is when the server published the
    applied version. All times are timezone-aware UTC. ``key_problem`` is the
    reason why the template key cannot open the store, judged by the stored
    key check value only, or None. ``file_problem`` is the reason why the
    path no longer names the file the store opened and reads (it was moved,
    replaced or deleted), with what to do, or None. The other fields then describe
    the file that was opened. Neither problem changes :meth:`is_usable`.
    """

    version: int
    enrolments: int
    watchlisted: int
    revoked: int
    fingerprint_templates: int
    iris_templates: int
    updated_at: datetime.datetime | None
    expires_at: datetime.datetime | None
    published_at: datetime.datetime | None
    key_problem: str | None = None
    file_problem: str | None = None

    def age_s(self, now: datetime.datetime) -> float | None:
        """Return seconds since the last verified update, or None if never."""
        if self.updated_at is None:
            return None
        return (now - self.updated_at).total_seconds()

    def usable_until(self, max_offline_age_s: float) -> datetime.datetime | None:
        """Return when the templates stop being usable offline, or None."""
        if self.expires_at is None:
            return None
        return self.expires_at + datetime.timedelta(seconds=max_offline_age_s)

    def is_usable(self, now: datetime.datetime, max_offline_age_s: float) -> bool:
        """Tell whether the lane may decide on these templates at ``now``.

        The templates stay usable until ``max_offline_age_s`` past the expiry
        of the last verified metadata. After that the lane goes out of
        service, because a frozen or cut-off gate would otherwise keep a
        stale watchlist forever.
        """
        until = self.usable_until(max_offline_age_s)
        return until is not None and self.version > 0 and now <= until


def parse_utc(value: str | None) -> datetime.datetime | None:
    """Parse an ISO 8601 time stored by the writer, or None."""
    if value is None:
        return None
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


class TemplateStore(Closing):
    """Read enrolments and the watchlist gallery from ``templates.db``.

    Safe to share between threads: one connection behind a lock.

    Args:
        path: the ``templates.db`` file (it may not exist yet).
        key: the gate's 32-byte template key.
        key_file: the configured key file, named in errors.

    Raises:
        ValueError: the key is not 32 bytes long.
    """

    def __init__(self, path: Path, key: bytes, key_file: str | None = None) -> None:
        self._path = Path(path)
        self._cipher = TemplateCipher(key)
        self._key_file = key_file
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        # (st_dev, st_ino) of the file behind self._connection.
        self._identity: tuple[int, int] | None = None
        self._closed = False

    def close(self) -> None:
        """Close the database connection; calling it again does nothing."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None
                self._identity = None

    def _open(self) -> sqlite3.Connection | None:
        """Open the path and record which file it is; None without a file.

        The path is looked up before and after the open. When it names
        another file afterwards, it was replaced during the open and the
        open is retried, so that the recorded identity is the opened file's.
        A later replacement is then seen by :meth:`_file_problem`.

        Raises:
            StoreError: the file cannot be opened, or kept changing.
        """
        for _ in range(_OPEN_TRIES):
            before = _file_identity(self._path)
            if before is None:
                return None
            connection = connect(self._path, writable=False)
            if _file_identity(self._path) == before:
                self._connection = connection
                self._identity = before
                return connection
            connection.close()
        raise StoreError(
            f"template store {self._path} changed to another file {_OPEN_TRIES} "
            "times while it was being opened. Find what keeps replacing it, "
            "stop it, and try again"
        )

    def _file_problem(self) -> str | None:
        """Return why the path no longer names the opened file, or None.

        One ``stat`` call, so it is cheap enough for every read. A path that
        cannot be looked up is a problem until it can be again.
        """
        if self._identity is None:
            return None
        try:
            current = _file_identity(self._path)
        except StoreError as err:
            return str(err)
        if current == self._identity:
            return None
        if current is None:
            change = f"{self._path} no longer exists"
        else:
            change = f"{self._path} is no longer the file this service opened"
        return (
            f"{change}: it was moved or replaced while edge-gate.service was "
            "running, so the service still reads the old file. Restart "
            "edge-gate.service so that it opens the path again. To replace "
            f"{self._path.name} next time, {move_aside_text(self._path)}"
        )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """Hold the lock and one read transaction; yield None without a file."""
        with self._lock:
            if self._closed:
                raise StoreError("the template store is closed")
            connection = self._connection
            if connection is None:
                connection = self._open()
            if connection is None:
                yield None
                return
            try:
                connection.execute("BEGIN")
                yield connection
            except sqlite3.Error as err:
                raise StoreError(
                    f"reading template store {self._path} failed: {err}"
                ) from err
            finally:
                if connection.in_transaction:
                    connection.execute("COMMIT")

    def lookup(self, issuing_state: str, document_number: str) -> Enrolment | None:
        """Find the enrolment of a travel document.

        Args:
            issuing_state: the MRZ issuing state (``UTO``).
            document_number: the MRZ document number, fillers included as read.

        Returns:
            The enrolment with its decrypted templates, or None when the
            document is not enrolled. Expired and revoked enrolments are
            returned; the caller decides.

        Raises:
            StoreError: the database is unreadable, was sealed with another
                template key, or a template fails authentication.
        """
        document_key = self._cipher.document_index(issuing_state, document_number)
        with self._read() as connection:
            if connection is None:
                return None
            self._check_file()
            self._check_key(connection)
            row = connection.execute(
                "SELECT d.enrolment_id, d.expiry, e.person_id, e.enrolment_expiry, "
                "e.watchlisted, e.revoked FROM documents d JOIN enrolments e "
                "USING (enrolment_id) WHERE d.document_key = ?",
                (document_key,),
            ).fetchone()
            if row is None:
                return None
            enrolment_id = str(row[0])
            templates = connection.execute(
                "SELECT kind, position, sealed FROM templates WHERE enrolment_id = ?",
                (enrolment_id,),
            ).fetchall()

        fingerprints: dict[str, bytes] = {}
        irises: dict[str, bytes] = {}
        for kind, position, sealed in templates:
            plain = self._cipher.open(enrolment_id, kind, position, sealed)
            (fingerprints if kind == "fingerprint" else irises)[position] = plain
        return Enrolment(
            enrolment_id=enrolment_id,
            person_id=str(row[2]),
            issuing_state=issuing_state,
            document_number=document_number,
            document_expiry=datetime.date.fromisoformat(row[1]),
            enrolment_expiry=datetime.date.fromisoformat(row[3]),
            watchlisted=bool(row[4]),
            revoked=bool(row[5]),
            fingerprints=fingerprints,
            irises=irises,
        )

    def watchlist_irises(self) -> list[tuple[str, bytes]]:
        """Return (enrolment id, iris template) for every watchlisted eye."""
        return self._watchlist("iris")

    def watchlist_fingerprints(self) -> list[tuple[str, bytes]]:
        """Return (enrolment id, fingerprint template) for every watchlisted
        finger."""
        return self._watchlist("fingerprint")

    def _watchlist(self, kind: str) -> list[tuple[str, bytes]]:
        with self._read() as connection:
            if connection is None:
                return []
            self._check_file()
            self._check_key(connection)
            rows = connection.execute(
                "SELECT t.enrolment_id, t.position, t.sealed FROM enrolments e "
                "JOIN templates t USING (enrolment_id) "
                "WHERE e.watchlisted = 1 AND t.kind = ? "
                "ORDER BY t.enrolment_id, t.position",
                (kind,),
            ).fetchall()
        return [
            (str(eid), self._cipher.open(eid, kind, position, sealed))
            for eid, position, sealed in rows
        ]

    def _check_file(self) -> None:
        """Raise when the path no longer names the file being read."""
        problem = self._file_problem()
        if problem is not None:
            raise StoreError(problem)

    def _check_key(self, connection: sqlite3.Connection) -> None:
        """Raise before any template is opened with a key that did not seal them.

        An older store without a key check value passes here, and each of its
        templates still fails authentication on its own under another key.
        """
        problem = self._stored_key_problem(stored_key_check(connection))
        if problem is not None:
            raise StoreError(problem)

    def key_problem(self) -> str | None:
        """Tell why the template key cannot open this store, or None if it can.

        Unlike :attr:`TemplateStatus.key_problem`, this also opens every
        template of an older store that has no key check value yet, so that
        a store sealed with another key, or with two keys, is found there
        too. The next ``edge-gate sync`` adds the value to such a store.

        Raises:
            StoreError: the database is unreadable.
        """
        with self._read() as connection:
            if connection is None:
                return None
            return template_key_problem(
                connection, self._cipher, self._path, self._key_file
            )

    def version(self) -> int:
        """Return the applied template version (0 before the first update)."""
        return self.status().version

    def updated_at(self) -> datetime.datetime | None:
        """Return when sync last verified the templates as current (UTC)."""
        return self.status().updated_at

    def expires_at(self) -> datetime.datetime | None:
        """Return when the last verified update metadata expires (UTC)."""
        return self.status().expires_at

    def status(self) -> TemplateStatus:
        """Read the version, counts and times (the writer keeps the counts
        in ``meta``, so this reads one small table)."""
        with self._read() as connection:
            if connection is None:
                return TemplateStatus(0, 0, 0, 0, 0, 0, None, None, None)
            meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
            file_problem = self._file_problem()
        return TemplateStatus(
            version=int(meta.get("version", 0)),
            enrolments=int(meta.get("enrolments", 0)),
            watchlisted=int(meta.get("watchlisted", 0)),
            revoked=int(meta.get("revoked", 0)),
            fingerprint_templates=int(meta.get("fingerprint_templates", 0)),
            iris_templates=int(meta.get("iris_templates", 0)),
            updated_at=parse_utc(meta.get("updated_at")),
            expires_at=parse_utc(meta.get("expires_at")),
            published_at=parse_utc(meta.get("published_at")),
            key_problem=self._stored_key_problem(meta.get(KEY_CHECK)),
            file_problem=file_problem,
        )

    def _stored_key_problem(self, stored: str | None) -> str | None:
        if stored is None or self._cipher.matches_key_check(stored):
            return None
        return key_mismatch_text(self._path, self._key_file)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """Return (device, inode) of the file at ``path``, or None if there is none.

    Raises:
        StoreError: the path cannot be looked up (for example no permission
            on its folder).
    """
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreError(
            f"cannot look up template store {path}: {err.strerror or err}. Make "
            "the state folder readable by the edge-gate user"
        ) from err
    return found.st_dev, found.st_ino
