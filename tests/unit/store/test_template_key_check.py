"""The key check value of templates.db, on real SQLite files.

The store records which template key sealed it, so that a writer or reader
with another key stops before it seals or opens anything.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
from pathlib import Path

import pytest

from edge_gate.errors import StoreError
from edge_gate.store import (
    DocumentRecord,
    EnrolmentRecord,
    TemplateStore,
    TemplateStoreWriter,
)
from edge_gate.store._crypto import TemplateCipher

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)
EXPIRES = NOW + datetime.timedelta(days=1)
MISMATCH = "other.key is not the key that sealed"
# A running daemon keeps the file it opened, so the fix stops the service first.
WHAT_TO_DO = (
    "Restore the key that sealed templates.db, or stop edge-gate.service, "
    "move templates.db aside with its -wal and -shm files, run edge-gate sync, "
    "and start edge-gate.service again"
)


def record(number: int, *, watchlisted: bool = False) -> EnrolmentRecord:
    return EnrolmentRecord(
        enrolment_id=f"E{number}",
        person_id=f"P{number}",
        documents=(DocumentRecord("UTO", f"N{number}", datetime.date(2031, 1, 1)),),
        enrolment_expiry=datetime.date(2030, 1, 1),
        watchlisted=watchlisted,
        fingerprints={"right_index": f"fp-{number}".encode()},
        irises={"left": f"iris-{number}".encode()},
    )


def apply(path: Path, key: bytes, puts: list[EnrolmentRecord], *, version: int) -> None:
    with TemplateStoreWriter(path, key, "gate.key") as writer:
        base = writer.version()
        with writer.update(
            base_version=base,
            new_version=version,
            published_at=NOW,
            updated_at=NOW,
            expires_at=EXPIRES,
        ) as changes:
            changes.put(puts)


def table_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Read every row of every table, to show that nothing changed."""
    connection = sqlite3.connect(path)
    try:
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("meta", "enrolments", "documents", "templates")
        }
    finally:
        connection.close()


def make_older_store(path: Path) -> None:
    """Remove the key check value, as in a store written before it existed."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("DELETE FROM meta WHERE name = 'key_check'")
    connection.close()


def reseal_with(path: Path, key: bytes, enrolment_id: str) -> None:
    """Seal one enrolment's templates with ``key``, as an older sync did
    when it ran with another key."""
    cipher = TemplateCipher(key)
    connection = sqlite3.connect(path)
    with connection:
        for kind, position in connection.execute(
            "SELECT kind, position FROM templates WHERE enrolment_id = ?",
            (enrolment_id,),
        ).fetchall():
            sealed = cipher.seal(enrolment_id, kind, position, b"resealed")
            connection.execute(
                "UPDATE templates SET sealed = ? WHERE enrolment_id = ? "
                "AND kind = ? AND position = ?",
                (sealed, enrolment_id, kind, position),
            )
    connection.close()


def test_first_update_records_key_check(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1)], version=1)

    stored = table_rows(path)["meta"]

    assert ("key_check", TemplateCipher(KEY).key_check_value) in stored
    assert (
        TemplateCipher(KEY).key_check_value != TemplateCipher(OTHER_KEY).key_check_value
    )
    # The value is a keyed MAC, not the key or a hash of the key alone.
    assert KEY.hex() not in str(stored)


def test_writer_with_other_key_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1), record(2)], version=1)
    before = table_rows(path)

    with pytest.raises(StoreError) as raised:
        TemplateStoreWriter(path, OTHER_KEY, "/etc/edge_gate/other.key")

    assert f"/etc/edge_gate/other.key is not the key that sealed {path}" in str(
        raised.value
    )
    assert WHAT_TO_DO in str(raised.value)
    assert table_rows(path) == before


def test_update_rechecks_key(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    # This writer opens an empty store, so its key is not checked yet.
    with TemplateStoreWriter(path, OTHER_KEY, "other.key") as late_writer:
        apply(path, KEY, [record(1)], version=1)
        before = table_rows(path)

        with (
            pytest.raises(StoreError, match=re.escape(MISMATCH)),
            late_writer.update(
                base_version=1,
                new_version=2,
                published_at=NOW,
                updated_at=NOW,
                expires_at=EXPIRES,
            ) as changes,
        ):
            changes.put([record(2)])

    assert table_rows(path) == before


def test_empty_store_keeps_no_key_without_update(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    # A sync with a wrong key that applies nothing leaves the store free.
    with TemplateStoreWriter(path, OTHER_KEY, "other.key"):
        pass

    apply(path, KEY, [record(1)], version=1)

    with TemplateStore(path, KEY) as store:
        assert store.status().key_problem is None
        assert store.lookup("UTO", "N1") is not None


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda store: store.lookup("UTO", "N1"), id="lookup"),
        pytest.param(lambda store: store.watchlist_irises(), id="watchlist-irises"),
        pytest.param(
            lambda store: store.watchlist_fingerprints(), id="watchlist-fingerprints"
        ),
    ],
)
def test_reader_with_other_key_raises(tmp_path: Path, read: object) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1, watchlisted=True)], version=1)

    with (
        TemplateStore(path, OTHER_KEY, "other.key") as store,
        pytest.raises(StoreError) as raised,
    ):
        read(store)  # type: ignore[operator]

    assert MISMATCH in str(raised.value)
    assert WHAT_TO_DO in str(raised.value)


def test_reader_names_setting_without_key_file(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1, watchlisted=True)], version=1)

    with (
        TemplateStore(path, OTHER_KEY) as store,
        pytest.raises(StoreError) as raised,
    ):
        store.watchlist_irises()

    assert "the configured template key ([store] key_file) is not" in str(raised.value)


def test_status_reports_key_problem(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1)], version=1)

    with TemplateStore(path, OTHER_KEY, "other.key") as store:
        status = store.status()
        problem = store.key_problem()
    with TemplateStore(path, KEY, "gate.key") as store:
        right_status = store.status()
        right_problem = store.key_problem()

    assert status.version == 1
    assert status.key_problem is not None
    assert MISMATCH in status.key_problem
    assert problem == status.key_problem
    assert right_status.key_problem is None
    assert right_problem is None


def test_writer_adds_key_check_to_older_store(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1), record(2)], version=1)
    make_older_store(path)

    with TemplateStoreWriter(path, KEY, "gate.key") as writer:
        version = writer.version()

    assert version == 1
    assert ("key_check", TemplateCipher(KEY).key_check_value) in table_rows(path)[
        "meta"
    ]
    with (
        TemplateStore(path, OTHER_KEY, "other.key") as store,
        pytest.raises(StoreError, match=re.escape(MISMATCH)),
    ):
        store.lookup("UTO", "N1")


def test_older_store_rejects_other_key(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1), record(2)], version=1)
    make_older_store(path)
    before = table_rows(path)

    with pytest.raises(StoreError, match=re.escape(MISMATCH)):
        TemplateStoreWriter(path, OTHER_KEY, "other.key")

    assert table_rows(path) == before
    with TemplateStore(path, OTHER_KEY, "other.key") as store:
        problem = store.key_problem()
    assert problem is not None
    assert MISMATCH in problem


def test_mixed_older_store_rejected(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, KEY, [record(1), record(2), record(3)], version=1)
    make_older_store(path)
    reseal_with(path, OTHER_KEY, "E2")
    before = table_rows(path)

    with pytest.raises(StoreError) as raised:
        TemplateStoreWriter(path, KEY, "gate.key")
    with TemplateStore(path, KEY, "gate.key") as store:
        problem = store.key_problem()

    message = str(raised.value)
    assert "2 of the 6 templates" in message
    assert "do not open with the template key gate.key" in message
    assert "rows sealed with two keys" in message
    assert "stop edge-gate.service, move templates.db aside with its -wal" in message
    assert problem == message
    assert table_rows(path) == before


def test_key_check_waits_for_first_update(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    with TemplateStoreWriter(path, KEY, "gate.key"):
        pass
    names = [row[0] for row in table_rows(path)["meta"]]
    assert "key_check" not in names

    apply(path, KEY, [record(1)], version=1)

    assert ("key_check", TemplateCipher(KEY).key_check_value) in table_rows(path)[
        "meta"
    ]
