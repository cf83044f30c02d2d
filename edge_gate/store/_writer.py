"""The write side of ``templates.db``, used only by ``edge-gate sync``.

Every change of the template set happens inside one SQLite transaction
(:meth:`TemplateStoreWriter.update`): a full snapshot clears and refills the
tables, a delta replaces or deletes single enrolments, and the new version,
counts and times are written last. A crash or power cut before ``COMMIT``
leaves the previous set; after it, the new one. Templates are sealed with the
gate's own key (see :mod:`edge_gate.store._crypto`) before they are written.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_gate._closing import Closing
from edge_gate.errors import StoreError, UpdateVerificationError

from ._crypto import TemplateCipher
from ._records import EnrolmentRecord
from ._schema import (
    check_template_key,
    claim_template_key,
    connect,
    rollback_quietly,
)

logger = logging.getLogger(__name__)


class TemplateUpdate:
    """Changes collected inside one :meth:`TemplateStoreWriter.update`."""

    def __init__(self, connection: sqlite3.Connection, cipher: TemplateCipher) -> None:
        self._connection = connection
        self._cipher = cipher
        self._is_cleared = False
        self.records_put = 0
        self.records_deleted = 0

    def clear(self) -> None:
        """Delete every enrolment (the start of a full snapshot)."""
        for table in ("templates", "documents", "enrolments"):
            self._connection.execute(f"DELETE FROM {table}")  # noqa: S608
        self._is_cleared = True

    def put(self, records: Iterable[EnrolmentRecord]) -> None:
        """Insert or replace enrolments with their documents and templates."""
        enrolment_rows = []
        document_rows = []
        template_rows = []
        replaced = []
        for record in records:
            enrolment_rows.append(
                (
                    record.enrolment_id,
                    record.person_id,
                    record.enrolment_expiry.isoformat(),
                    int(record.watchlisted),
                    int(record.revoked),
                    len(record.fingerprints),
                    len(record.irises),
                )
            )
            replaced.append((record.enrolment_id,))
            for document in record.documents:
                key = self._cipher.document_index(
                    document.issuing_state, document.document_number
                )
                document_rows.append(
                    (key, record.enrolment_id, document.expiry.isoformat())
                )
            for kind, position, template in record.templates():
                sealed = self._cipher.seal(
                    record.enrolment_id, kind, position, template
                )
                template_rows.append((record.enrolment_id, kind, position, sealed))

        execute_many = self._connection.executemany
        if not self._is_cleared:
            execute_many("DELETE FROM documents WHERE enrolment_id = ?", replaced)
            execute_many("DELETE FROM templates WHERE enrolment_id = ?", replaced)
        execute_many(
            "INSERT OR REPLACE INTO enrolments VALUES (?, ?, ?, ?, ?, ?, ?)",
            enrolment_rows,
        )
        # A document that moved to another enrolment in the same delta is
        # taken over by the record that lists it now.
        execute_many("INSERT OR REPLACE INTO documents VALUES (?, ?, ?)", document_rows)
        execute_many("INSERT INTO templates VALUES (?, ?, ?, ?)", template_rows)
        self.records_put += len(enrolment_rows)

    def delete(self, enrolment_ids: Iterable[str]) -> None:
        """Delete enrolments; an id that is not stored is ignored."""
        rows = [(enrolment_id,) for enrolment_id in enrolment_ids]
        for table in ("templates", "documents", "enrolments"):
            self._connection.executemany(
                f"DELETE FROM {table} WHERE enrolment_id = ?",  # noqa: S608
                rows,
            )
        self.records_deleted += len(rows)


class TemplateStoreWriter(Closing):
    """Apply template updates to ``templates.db`` and record their freshness.

    Args:
        path: the ``templates.db`` file; created with its schema if missing.
        key: the gate's 32-byte template key.
        key_file: the configured key file, named in errors.

    Raises:
        StoreError: the file cannot be opened or has another schema, or
            its templates were sealed with another key (nothing is written).
        ValueError: the key is not 32 bytes long.
    """

    def __init__(self, path: Path, key: bytes, key_file: str | None = None) -> None:
        self._path = Path(path)
        self._cipher = TemplateCipher(key)
        self._key_file = key_file
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._connection: sqlite3.Connection | None = connect(self._path, writable=True)
        try:
            check_template_key(self._connection, self._cipher, self._path, key_file)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError("the template store writer is closed")
        return self._connection

    def version(self) -> int:
        """Return the applied template version (0 before the first update)."""
        row = (
            self._open_connection()
            .execute("SELECT value FROM meta WHERE name = 'version'")
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    @contextmanager
    def update(
        self,
        *,
        base_version: int,
        new_version: int,
        published_at: datetime.datetime,
        updated_at: datetime.datetime,
        expires_at: datetime.datetime,
    ) -> Iterator[TemplateUpdate]:
        """Apply one update in one transaction.

        Args:
            base_version: the version the update was built on; it must be
                the applied version. A full snapshot depends on no version, so
                its caller passes the applied one.
            new_version: the version after the update; it must be higher.
            published_at: when the server published ``new_version``.
            updated_at: when the update metadata was verified.
            expires_at: when the verified update metadata expires.

        Yields:
            The update to fill with :meth:`TemplateUpdate.clear`,
            :meth:`TemplateUpdate.put` and :meth:`TemplateUpdate.delete`.

        Raises:
            UpdateVerificationError: ``new_version`` is not above the applied
                version, or ``base_version`` is not the applied version.
            StoreError: SQLite failed, or the store was sealed with another
                template key; nothing was changed.
        """
        connection = self._open_connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(f"cannot start an update of {self._path}: {err}") from err
        try:
            current = self.version()
            if base_version != current:
                raise UpdateVerificationError(
                    f"the update builds on template version {base_version}, but "
                    f"version {current} is applied"
                )
            if new_version <= current:
                raise UpdateVerificationError(
                    f"template version {new_version} is not newer than the applied "
                    f"version {current} (rollback)"
                )
            # The first update records which key seals the store.
            claim_template_key(
                connection,
                self._cipher,
                self._path,
                self._key_file,
                record_when_empty=True,
            )
            changes = TemplateUpdate(connection, self._cipher)
            yield changes
            self._write_meta(
                connection,
                {
                    "version": str(new_version),
                    "published_at": published_at.isoformat(),
                    "updated_at": updated_at.isoformat(),
                    "expires_at": expires_at.isoformat(),
                    **self._counts(connection),
                },
            )
            connection.execute("COMMIT")
        except sqlite3.Error as err:
            rollback_quietly(connection)
            raise StoreError(
                f"applying the update to {self._path} failed: {err}"
            ) from err
        except BaseException:
            rollback_quietly(connection)
            raise
        logger.info(
            "applied template version %d over %d (%d records put, %d deleted)",
            new_version,
            base_version,
            changes.records_put,
            changes.records_deleted,
        )

    def mark_verified(
        self, *, updated_at: datetime.datetime, expires_at: datetime.datetime
    ) -> None:
        """Record that the applied version was verified as current.

        Raises:
            StoreError: SQLite failed.
        """
        connection = self._open_connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            self._write_meta(
                connection,
                {
                    "updated_at": updated_at.isoformat(),
                    "expires_at": expires_at.isoformat(),
                },
            )
            connection.execute("COMMIT")
        except sqlite3.Error as err:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise StoreError(f"updating {self._path} failed: {err}") from err

    @staticmethod
    def _write_meta(connection: sqlite3.Connection, values: dict[str, str]) -> None:
        connection.executemany(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", values.items()
        )

    @staticmethod
    def _counts(connection: sqlite3.Connection) -> dict[str, str]:
        enrolments, watchlisted, revoked, fingerprints, irises = connection.execute(
            "SELECT count(*), coalesce(sum(watchlisted), 0), "
            "coalesce(sum(revoked), 0), coalesce(sum(fingerprint_count), 0), "
            "coalesce(sum(iris_count), 0) FROM enrolments"
        ).fetchone()
        return {
            "enrolments": str(enrolments),
            "watchlisted": str(watchlisted),
            "revoked": str(revoked),
            "fingerprint_templates": str(fingerprints),
            "iris_templates": str(irises),
        }
