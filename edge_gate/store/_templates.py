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
"""

from __future__ import annotations

import datetime
import logging
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
    stored_key_check,
    template_key_problem,
)

logger = logging.getLogger(__name__)

TEMPLATES_DB = "templates.db"


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
    key check value only, or None. It does not change :meth:`is_usable`.
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
        self._closed = False

    def close(self) -> None:
        """Close the database connection; calling it again does nothing."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """Hold the lock and one read transaction; yield None without a file."""
        with self._lock:
            if self._closed:
                raise StoreError("the template store is closed")
            if self._connection is None:
                if not self._path.exists():
                    yield None
                    return
                self._connection = connect(self._path, writable=False)
            connection = self._connection
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
        )

    def _stored_key_problem(self, stored: str | None) -> str | None:
        if stored is None or self._cipher.matches_key_check(stored):
            return None
        return key_mismatch_text(self._path, self._key_file)
