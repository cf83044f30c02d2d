"""A templates.db path that names another file than the one the reader opened.

An engineer who moves templates.db aside and syncs again under a running
daemon leaves the daemon reading the old file. The reader must say so in
its status and stop serving enrolments and the watchlist from the old file.
All on real SQLite files.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from edge_gate.errors import StoreError
from edge_gate.store import (
    DocumentRecord,
    EnrolmentRecord,
    TemplateStore,
    TemplateStoreWriter,
)

KEY = bytes(range(32))
NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)
EXPIRES = NOW + datetime.timedelta(days=1)
RESTART = "Restart edge-gate.service so that it opens the path again"


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


def sync(path: Path, records: list[EnrolmentRecord], *, version: int) -> None:
    """Apply a full snapshot, as edge-gate sync does."""
    with TemplateStoreWriter(path, KEY, "gate.key") as writer:
        base = writer.version()
        with writer.update(
            base_version=base,
            new_version=version,
            published_at=NOW,
            updated_at=NOW,
            expires_at=EXPIRES,
        ) as changes:
            changes.clear()
            changes.put(records)


def move_aside(path: Path) -> None:
    """Rename templates.db with its -wal and -shm files, as messages advise."""
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{path}.old{suffix}"))


def test_synced_again_under_reader_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    sync(path, [record(1)], version=1)
    with TemplateStore(path, KEY, "gate.key") as reader:
        before = reader.status()
        move_aside(path)
        sync(path, [record(1), record(2, watchlisted=True)], version=2)
        after = reader.status()
        with pytest.raises(StoreError) as lookup_error:
            reader.lookup("UTO", "N2")
        with pytest.raises(StoreError) as watchlist_error:
            reader.watchlist_irises()

    assert before.file_problem is None
    problem = after.file_problem
    assert problem is not None
    assert f"{path} is no longer the file this service opened" in problem
    assert RESTART in problem
    assert "stop edge-gate.service, move templates.db aside" in problem
    # The fields still describe the file that was opened.
    assert after.version == 1
    assert str(lookup_error.value) == problem
    assert str(watchlist_error.value) == problem


def test_moved_aside_under_reader_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    sync(path, [record(1)], version=1)
    with TemplateStore(path, KEY, "gate.key") as reader:
        assert reader.lookup("UTO", "N1") is not None
        move_aside(path)
        problem = reader.status().file_problem
        with pytest.raises(StoreError, match="no longer exists"):
            reader.lookup("UTO", "N1")

    assert problem is not None
    assert f"{path} no longer exists" in problem
    assert RESTART in problem


def test_moved_back_clears_problem(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    sync(path, [record(1)], version=1)
    with TemplateStore(path, KEY, "gate.key") as reader:
        reader.status()
        move_aside(path)
        moved = reader.status().file_problem
        Path(f"{path}.old").rename(path)
        back = reader.status().file_problem
        found = reader.lookup("UTO", "N1")

    assert moved is not None
    assert back is None
    assert found is not None


def test_update_in_place_is_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    sync(path, [record(1)], version=1)
    with TemplateStore(path, KEY, "gate.key") as reader:
        reader.status()
        sync(path, [record(1), record(2, watchlisted=True)], version=2)
        status = reader.status()
        found = reader.lookup("UTO", "N2")
        watchlist = reader.watchlist_irises()

    assert status.file_problem is None
    assert status.version == 2
    assert found is not None
    assert watchlist == [("E2", b"iris-2")]


def test_first_sync_after_start_is_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "templates.db"
    with TemplateStore(path, KEY, "gate.key") as reader:
        empty = reader.status()
        sync(path, [record(1)], version=1)
        status = reader.status()

    assert empty.file_problem is None
    assert empty.version == 0
    assert status.file_problem is None
    assert status.version == 1
