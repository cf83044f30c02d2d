"""TemplateStore and TemplateStoreWriter on real SQLite files."""

from __future__ import annotations

import datetime
import sqlite3
import threading
from pathlib import Path

import pytest

from edge_gate.errors import StoreError, UpdateVerificationError
from edge_gate.store import (
    DocumentRecord,
    EnrolmentRecord,
    TemplateStore,
    TemplateStoreWriter,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)
EXPIRES = NOW + datetime.timedelta(days=1)


def record(
    number: int, *, watchlisted: bool = False, documents: int = 1
) -> EnrolmentRecord:
    return EnrolmentRecord(
        enrolment_id=f"E{number}",
        person_id=f"P{number}",
        documents=tuple(
            DocumentRecord("UTO", f"N{number}X{i}", datetime.date(2031, 1, 1 + i))
            for i in range(documents)
        ),
        enrolment_expiry=datetime.date(2030, 1, 1),
        watchlisted=watchlisted,
        fingerprints={"right_index": f"fp-{number}".encode()},
        irises={
            "left": f"iris-l-{number}".encode(),
            "right": f"iris-r-{number}".encode(),
        },
    )


def apply(
    path: Path,
    puts: list[EnrolmentRecord],
    *,
    version: int,
    full: bool = True,
    deletes: tuple[str, ...] = (),
) -> None:
    with TemplateStoreWriter(path, KEY) as writer:
        base = writer.version()
        with writer.update(
            base_version=base,
            new_version=version,
            published_at=NOW,
            updated_at=NOW,
            expires_at=EXPIRES,
        ) as changes:
            if full:
                changes.clear()
            changes.delete(deletes)
            changes.put(puts)


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    with TemplateStore(tmp_path / "templates.db", KEY) as store:
        assert store.version() == 0
        assert store.updated_at() is None
        assert store.lookup("UTO", "N1X0") is None
        assert store.watchlist_irises() == []
        assert not store.status().is_usable(NOW, 3600)


def test_lookup_returns_decrypted_templates(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1, documents=2), record(2)], version=1)

    with TemplateStore(path, KEY) as store:
        found = store.lookup("UTO", "N1X1")

    assert found is not None
    assert found.enrolment_id == "E1"
    assert found.person_id == "P1"
    assert found.document_expiry == datetime.date(2031, 1, 2)
    assert found.enrolment_expiry == datetime.date(2030, 1, 1)
    assert found.fingerprints == {"right_index": b"fp-1"}
    assert found.irises == {"left": b"iris-l-1", "right": b"iris-r-1"}
    assert not found.watchlisted
    assert not found.revoked


def test_lookup_ignores_fillers_and_case(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=1)

    with TemplateStore(path, KEY) as store:
        padded = store.lookup("UTO", "N1X0<<<")
        lower = store.lookup("uto", "n1x0")
        other_state = store.lookup("UT<", "N1X0")

    assert padded is not None
    assert padded.enrolment_id == "E1"
    assert lower is not None
    assert lower.enrolment_id == "E1"
    assert other_state is None


def test_file_holds_no_plaintext(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=1)

    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())

    assert b"iris-l-1" not in raw
    assert b"fp-1" not in raw
    assert b"N1X0" not in raw


def test_wrong_key_fails_authentication(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1, watchlisted=True)], version=1)
    # A store written before the key check value existed: each template
    # still fails on its own.
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("DELETE FROM meta WHERE name = 'key_check'")
    connection.close()

    with TemplateStore(path, OTHER_KEY) as store:
        # The document index is keyed too: another key finds nothing.
        assert store.lookup("UTO", "N1X0") is None
        with pytest.raises(StoreError, match="failed authentication") as raised:
            store.watchlist_irises()
    # The fix stops the daemon first, which keeps reading the file it opened.
    assert "or stop edge-gate.service, move templates.db aside" in str(raised.value)


def test_template_moved_to_other_enrolment_fails(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1), record(2)], version=1)
    with sqlite3.connect(path) as connection:
        sealed = connection.execute(
            "SELECT sealed FROM templates "
            "WHERE enrolment_id = 'E1' AND position = 'left'"
        ).fetchone()[0]
        connection.execute(
            "UPDATE templates SET sealed = ? "
            "WHERE enrolment_id = 'E2' AND position = 'left'",
            (sealed,),
        )

    with TemplateStore(path, KEY) as store, pytest.raises(StoreError, match="E2"):
        store.lookup("UTO", "N2X0")


def test_template_moved_to_other_eye_fails(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=1)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE templates SET position = 'swap' WHERE position = 'left'"
        )
        connection.execute(
            "UPDATE templates SET position = 'left' WHERE position = 'right'"
        )
        connection.execute(
            "UPDATE templates SET position = 'right' WHERE position = 'swap'"
        )

    with TemplateStore(path, KEY) as store, pytest.raises(StoreError):
        store.lookup("UTO", "N1X0")


def test_watchlist_gallery(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(
        path,
        [
            record(1),
            record(2, watchlisted=True),
            record(3, documents=0, watchlisted=True),
        ],
        version=1,
    )

    with TemplateStore(path, KEY) as store:
        irises = store.watchlist_irises()
        fingerprints = store.watchlist_fingerprints()
        status = store.status()

    assert irises == [
        ("E2", b"iris-l-2"),
        ("E2", b"iris-r-2"),
        ("E3", b"iris-l-3"),
        ("E3", b"iris-r-3"),
    ]
    assert fingerprints == [("E2", b"fp-2"), ("E3", b"fp-3")]
    assert status.watchlisted == 2
    assert status.enrolments == 3


def test_delta_replaces_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1), record(2), record(3)], version=1)
    changed = EnrolmentRecord(
        enrolment_id="E2",
        person_id="P2",
        documents=(DocumentRecord("UTO", "NEW2", datetime.date(2032, 1, 1)),),
        enrolment_expiry=datetime.date(2030, 1, 1),
        revoked=True,
        fingerprints={"left_index": b"fp-new"},
    )

    apply(path, [changed], version=2, full=False, deletes=("E3",))

    with TemplateStore(path, KEY) as store:
        assert store.version() == 2
        assert store.lookup("UTO", "N2X0") is None
        updated = store.lookup("UTO", "NEW2")
        assert updated is not None
        assert updated.revoked
        assert updated.fingerprints == {"left_index": b"fp-new"}
        assert updated.irises == {}
        assert store.lookup("UTO", "N3X0") is None
        assert store.lookup("UTO", "N1X0") is not None
        assert store.status().enrolments == 2


def test_document_moves_between_enrolments(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1), record(2)], version=1)
    taker = EnrolmentRecord(
        enrolment_id="E2",
        person_id="P2",
        documents=(DocumentRecord("UTO", "N1X0", datetime.date(2031, 1, 1)),),
        enrolment_expiry=datetime.date(2030, 1, 1),
        irises={"left": b"x"},
    )
    giver = EnrolmentRecord(
        enrolment_id="E1",
        person_id="P1",
        documents=(),
        enrolment_expiry=datetime.date(2030, 1, 1),
        watchlisted=True,
        irises={"left": b"y"},
    )

    # The record that takes the document comes first in the delta.
    apply(path, [taker, giver], version=2, full=False)

    with TemplateStore(path, KEY) as store:
        found = store.lookup("UTO", "N1X0")
    assert found is not None
    assert found.enrolment_id == "E2"


def test_rollback_version_rejected(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=5)

    with pytest.raises(UpdateVerificationError, match="rollback"):
        apply(path, [record(2)], version=5)
    with pytest.raises(UpdateVerificationError, match="rollback"):
        apply(path, [record(2)], version=4)
    with TemplateStore(path, KEY) as store:
        assert store.version() == 5
        assert store.lookup("UTO", "N1X0") is not None


def test_wrong_base_version_rejected(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=2)

    with (
        TemplateStoreWriter(path, KEY) as writer,
        pytest.raises(UpdateVerificationError, match="builds on template version 1"),
        writer.update(
            base_version=1,
            new_version=3,
            published_at=NOW,
            updated_at=NOW,
            expires_at=EXPIRES,
        ),
    ):
        pass


def test_failed_update_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1), record(2)], version=1)

    with TemplateStoreWriter(path, KEY) as writer:
        with (
            pytest.raises(RuntimeError, match="bundle broke"),
            writer.update(
                base_version=1,
                new_version=2,
                published_at=NOW,
                updated_at=NOW,
                expires_at=EXPIRES,
            ) as changes,
        ):
            changes.clear()
            changes.put([record(9)])
            raise RuntimeError("bundle broke")
        assert writer.version() == 1

    with TemplateStore(path, KEY) as store:
        assert store.lookup("UTO", "N1X0") is not None
        assert store.lookup("UTO", "N9X0") is None
        assert store.status().enrolments == 2


def test_reader_sees_old_or_new_set(tmp_path: Path) -> None:
    # A reader during a long update keeps the last committed set (WAL).
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=1)
    with TemplateStore(path, KEY) as store, TemplateStoreWriter(path, KEY) as writer:
        with writer.update(
            base_version=1,
            new_version=2,
            published_at=NOW,
            updated_at=NOW,
            expires_at=EXPIRES,
        ) as changes:
            changes.clear()
            changes.put([record(2)])
            assert store.version() == 1
            assert store.lookup("UTO", "N1X0") is not None
            assert store.lookup("UTO", "N2X0") is None
        assert store.version() == 2
        assert store.lookup("UTO", "N1X0") is None
        assert store.lookup("UTO", "N2X0") is not None


def test_mark_verified_updates_freshness(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=1)
    later = NOW + datetime.timedelta(hours=5)

    with TemplateStoreWriter(path, KEY) as writer:
        writer.mark_verified(
            updated_at=later, expires_at=later + datetime.timedelta(days=1)
        )

    with TemplateStore(path, KEY) as store:
        status = store.status()
    assert status.updated_at == later
    assert status.expires_at == later + datetime.timedelta(days=1)
    assert status.published_at == NOW
    assert status.version == 1


@pytest.mark.parametrize(
    ("hours_after_expiry", "usable"),
    [
        pytest.param(-1.0, True, id="before-expiry"),
        pytest.param(23.9, True, id="within-offline-age"),
        pytest.param(24.1, False, id="past-offline-age"),
    ],
)
def test_offline_max_age(
    tmp_path: Path, hours_after_expiry: float, usable: bool
) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=1)
    now = EXPIRES + datetime.timedelta(hours=hours_after_expiry)

    with TemplateStore(path, KEY) as store:
        status = store.status()

    assert status.is_usable(now, 24 * 3600) is usable
    assert status.age_s(now) == (now - NOW).total_seconds()


def test_schema_version_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=1)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")

    with (
        TemplateStore(path, KEY) as store,
        pytest.raises(StoreError, match=r"schema version 99.*rebuilds it"),
    ):
        store.version()


def test_writer_rebuilds_other_schema(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(1)], version=3)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")

    with TemplateStoreWriter(path, KEY) as writer:
        assert writer.version() == 0

    assert "rebuilding it empty" in caplog.text
    with TemplateStore(path, KEY) as store:
        assert store.lookup("UTO", "N1X0") is None
        assert store.status().enrolments == 0


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    path.write_bytes(b"this is not sqlite" * 100)

    with (
        TemplateStore(path, KEY) as store,
        pytest.raises(StoreError, match="cannot open"),
    ):
        store.version()


def test_closed_store_raises(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path / "templates.db", KEY)
    store.close()
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.version()


def test_store_shared_between_threads(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    apply(path, [record(n) for n in range(20)], version=1)
    errors: list[BaseException] = []

    with TemplateStore(path, KEY) as store:

        def read_all() -> None:
            try:
                for n in range(20):
                    found = store.lookup("UTO", f"N{n}X0")
                    assert found is not None
                    assert found.fingerprints["right_index"] == f"fp-{n}".encode()
            except BaseException as err:
                errors.append(err)

        threads = [
            threading.Thread(target=read_all, name=f"reader-{i}") for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    assert errors == []


def test_key_of_wrong_length_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TemplateStore(tmp_path / "templates.db", b"short")
