"""Schema of ``templates.db`` and how its connections are opened.

``templates.db`` is written by ``edge-gate sync`` only and read by the lane
daemon, so it runs in WAL mode. Readers keep reading the last committed set
while the writer applies a bundle, and a commit switches them to the new set
at once. ``synchronous=FULL`` makes an acknowledged update survive a power
cut, because the applied version is what later rollback checks compare with.

Tables:

- ``meta``: name/value pairs (schema version, template version, times, and
  ``key_check``, the key check value of the template key that sealed the
  rows, see :func:`claim_template_key`).
- ``enrolments``: one row per enrolment with its flags, expiry and template
  counts (summing them is much faster than counting ``templates``, whose
  rows carry the sealed bytes).
- ``documents``: HMAC of (issuing state, document number) -> enrolment,
  with the document's expiry.
- ``templates``: sealed template bytes per enrolment, kind and position.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from edge_gate.errors import StoreError
from edge_gate.store._files import full_disk_text

from ._crypto import TemplateCipher

logger = logging.getLogger(__name__)

# Version 2 added the template counts to ``enrolments``.
SCHEMA_VERSION = 2
# The ``meta`` row with the key check value. Stores written before it existed
# lack the row and get it from the next sync (a migration, not a new schema).
KEY_CHECK = "key_check"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS enrolments (
    enrolment_id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL,
    enrolment_expiry TEXT NOT NULL,
    watchlisted INTEGER NOT NULL CHECK (watchlisted IN (0, 1)),
    revoked INTEGER NOT NULL CHECK (revoked IN (0, 1)),
    fingerprint_count INTEGER NOT NULL,
    iris_count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS enrolments_watchlisted
    ON enrolments (watchlisted) WHERE watchlisted = 1;
CREATE TABLE IF NOT EXISTS documents (
    document_key BLOB PRIMARY KEY,
    enrolment_id TEXT NOT NULL,
    expiry TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_enrolment ON documents (enrolment_id);
CREATE TABLE IF NOT EXISTS templates (
    enrolment_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('fingerprint', 'iris')),
    position TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (enrolment_id, kind, position)
) WITHOUT ROWID;
"""


def connect(path: Path, *, writable: bool) -> sqlite3.Connection:
    """Open ``templates.db`` with the pragmas both sides rely on.

    Args:
        path: the database file.
        writable: True for the sync job, which also creates the schema, and
            rebuilds an empty one over a file of another schema version
            (the sync then applies a full snapshot); False for readers,
            which get ``query_only``.

    Returns:
        A connection in autocommit mode; callers open transactions with
        explicit ``BEGIN``.

    Raises:
        StoreError: the file cannot be opened or is not a database, or (for
            readers) has another schema version.
    """
    try:
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        if writable:
            _create_schema(connection, path)
        else:
            connection.execute("PRAGMA query_only=ON")
        found = _schema_version(connection)
    except sqlite3.Error as err:
        raise StoreError(
            f"cannot open template store {path}: {err}.{full_disk_text(path)}"
        ) from err

    if found != str(SCHEMA_VERSION):
        connection.close()
        raise StoreError(
            f"template store {path} has schema version {found or 'none'}, expected "
            f"{SCHEMA_VERSION}: run edge-gate sync, which rebuilds it"
        )
    return connection


def _schema_version(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute(
            "SELECT value FROM meta WHERE name = 'schema_version'"
        ).fetchone()
    except sqlite3.OperationalError:
        # No meta table: an empty file or one this project did not create.
        return None
    return None if row is None else str(row[0])


def _create_schema(connection: sqlite3.Connection, path: Path) -> None:
    """Create the tables, or rebuild them over another schema version."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = _schema_version(connection)
        if found is not None and found != str(SCHEMA_VERSION):
            logger.warning(
                "template store %s has schema version %s; rebuilding it empty "
                "as version %d, so this sync applies a full snapshot",
                path,
                found,
                SCHEMA_VERSION,
            )
            for table in ("templates", "documents", "enrolments", "meta"):
                connection.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _DDL.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        connection.execute("COMMIT")
    except BaseException:
        rollback_quietly(connection)
        raise


def rollback_quietly(connection: sqlite3.Connection) -> None:
    """Roll back an open transaction while another error is propagating.

    A ROLLBACK fails when no transaction is open (the error came before
    BEGIN) or when SQLite already rolled back. Letting that failure escape
    would replace the original error, for example turning a SIGTERM or a
    full disk into "cannot rollback", so it is logged and dropped.
    """
    try:
        connection.execute("ROLLBACK")
    except sqlite3.Error as err:
        logger.debug("rollback after a failed transaction: %s", err)


def key_mismatch_text(path: Path, key_file: str | None) -> str:
    """Build the message for a template key that did not seal ``path``.

    Args:
        path: the ``templates.db`` file.
        key_file: the key file as configured, or None when unknown.
    """
    return (
        f"{_key_name(key_file)} is not the key that sealed {path}. Restore the "
        f"key that sealed {path.name}, or {move_aside_text(path)}"
    )


def move_aside_text(path: Path) -> str:
    """Say how to replace ``path`` with a store synced from scratch.

    The service is stopped first: a running daemon keeps reading the file it
    opened, so a store synced under it would not be seen until a restart.

    Args:
        path: the ``templates.db`` file.
    """
    return (
        f"stop edge-gate.service, move {path.name} aside with its -wal and -shm "
        "files, run edge-gate sync, and start edge-gate.service again"
    )


def _key_name(key_file: str | None) -> str:
    if key_file:
        return f"the template key {key_file}"
    return "the configured template key ([store] key_file)"


def stored_key_check(connection: sqlite3.Connection) -> str | None:
    """Return the key check value in ``meta``, or None for an older store."""
    row = connection.execute(
        "SELECT value FROM meta WHERE name = ?", (KEY_CHECK,)
    ).fetchone()
    return None if row is None else str(row[0])


def unopenable_templates(
    connection: sqlite3.Connection, cipher: TemplateCipher
) -> tuple[int, int]:
    """Try every sealed template with ``cipher``.

    Returns:
        (templates that fail to open, templates in the store).
    """
    failed = 0
    total = 0
    rows = connection.execute(
        "SELECT enrolment_id, kind, position, sealed FROM templates"
    )
    for enrolment_id, kind, position, sealed in rows:
        total += 1
        try:
            cipher.open(enrolment_id, kind, position, sealed)
        except StoreError:
            failed += 1
    return failed, total


def template_key_problem(
    connection: sqlite3.Connection,
    cipher: TemplateCipher,
    path: Path,
    key_file: str | None,
) -> str | None:
    """Tell why ``cipher``'s key cannot open the store, or None if it can.

    A store with a key check value is judged by that value alone. An older
    store without one is judged by opening every template, which also finds
    a store whose rows were sealed with two keys.

    Args:
        connection: a connection inside a transaction.
        cipher: the cipher of the configured template key.
        path: the ``templates.db`` file, for the message.
        key_file: the key file as configured, for the message.
    """
    stored = stored_key_check(connection)
    if stored is not None:
        if cipher.matches_key_check(stored):
            return None
        return key_mismatch_text(path, key_file)

    failed, total = unopenable_templates(connection, cipher)
    if failed == 0:
        return None
    if failed == total:
        return key_mismatch_text(path, key_file)
    return (
        f"{failed} of the {total} templates in {path} do not open with "
        f"{_key_name(key_file)}, so the store holds rows sealed with two "
        f"keys. To fix it, {move_aside_text(path)}"
    )


def claim_template_key(
    connection: sqlite3.Connection,
    cipher: TemplateCipher,
    path: Path,
    key_file: str | None,
    *,
    record_when_empty: bool,
) -> None:
    """Check the template key against the store and record its check value.

    The caller has begun a write transaction. The check value is written when
    the store has none yet: at the first update (``record_when_empty``),
    or for an older store whose templates all open with this key. A store
    without templates gets no value outside an update, so that a sync with
    a wrong key that applies nothing leaves the store free for the right one.

    Args:
        connection: a connection inside a write transaction.
        cipher: the cipher of the configured template key.
        path: the ``templates.db`` file, for the message.
        key_file: the key file as configured, for the message.
        record_when_empty: True inside an update, which is about to seal
            templates with this key.

    Raises:
        StoreError: the store was sealed with another key, or with two keys.
    """
    problem = template_key_problem(connection, cipher, path, key_file)
    if problem is not None:
        raise StoreError(problem)
    if stored_key_check(connection) is not None:
        return

    has_templates = connection.execute("SELECT 1 FROM templates LIMIT 1").fetchone()
    if has_templates is None and not record_when_empty:
        return
    connection.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?)",
        (KEY_CHECK, cipher.key_check_value),
    )
    if has_templates is not None:
        logger.info("template store %s: recorded the template key check", path)


def check_template_key(
    connection: sqlite3.Connection,
    cipher: TemplateCipher,
    path: Path,
    key_file: str | None,
) -> None:
    """Run :func:`claim_template_key` in its own transaction, before an update.

    Raises:
        StoreError: the store was sealed with another key, or with two keys,
            or SQLite failed. Nothing is written then.
    """
    try:
        connection.execute("BEGIN IMMEDIATE")
        claim_template_key(connection, cipher, path, key_file, record_when_empty=False)
        connection.execute("COMMIT")
    except sqlite3.Error as err:
        rollback_quietly(connection)
        raise StoreError(
            f"checking the template key of {path} failed: {err}.{full_disk_text(path)}"
        ) from err
    except BaseException:
        rollback_quietly(connection)
        raise
