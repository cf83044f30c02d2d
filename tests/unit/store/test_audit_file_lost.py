"""An audit.db deleted, moved or replaced under an open audit log, a lagging
head file, and a full disk on append."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_gate.errors import StoreError
from edge_gate.store import AuditLog, AuditRecord, RowsInLostFileError
from edge_gate.store._audit import AUDIT_HEAD_NAME

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def make_record(index: int) -> AuditRecord:
    return AuditRecord(
        time_utc=T0 + timedelta(minutes=index),
        transaction_id=f"tx-{index:04d}",
        outcome="accepted",
        reason="both modalities matched",
        lane_id="lane-1",
    )


def row_seqs(path: Path) -> list[int]:
    with AuditLog(path, read_only=True) as log:
        assert log.verify().is_intact
        return [entry.seq for entry in log.query()]


def test_deleted_folder_refuses_rows_and_restores_copy(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    path = state_dir / "audit.db"
    with AuditLog(path) as log:
        log.append_many([make_record(index) for index in range(3)])
        shutil.rmtree(state_dir)

        with pytest.raises(StoreError, match="was deleted or moved away") as caught:
            log.append(make_record(3))
        assert str(path) in str(caught.value)
        # The append leaves the copy to the daemon's check every second.
        assert not state_dir.exists()
        problem = log.check_file()
        assert "copied that file's rows (up to row 3) back to" in problem
        assert "restart edge-gate.service" in problem
        assert log.file_problem == problem
        # The open file took no row after the deletion was found.
        assert log.head()[0] == 3

    # The rows of the deleted file are back at the path, with a head file.
    assert row_seqs(path) == [1, 2, 3]
    assert (state_dir / AUDIT_HEAD_NAME).exists()


def test_append_fails_at_once_during_copy(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    with AuditLog(state_dir / "audit.db") as log:
        log.append(make_record(0))
        shutil.rmtree(state_dir)
        log.check_file()
        errors: list[StoreError] = []

        def append() -> None:
            try:
                log.append(make_record(1))
            except StoreError as err:
                errors.append(err)

        # check_file holds the lock while it copies a large file.
        with log._lock:
            thread = threading.Thread(target=append, name="append")
            thread.start()
            thread.join(5.0)
            assert not thread.is_alive()
        assert len(errors) == 1
        assert "was deleted or moved away" in str(errors[0])


def test_deleted_file_restored_beside_old_wal(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        log.append_many([make_record(index) for index in range(3)])
        # Only audit.db: its -wal and -shm files stay, still in use.
        path.unlink()
        assert "back to" in log.check_file()
    # SQLite leaves the -wal of a moved file, and the next open replays it
    # onto the copy, whose pages match.
    assert (tmp_path / "audit.db-wal").exists()
    with AuditLog(path) as log:
        assert log.head_problem == ""
        log.append(make_record(3))
        assert log.verify().is_intact
        assert [entry.seq for entry in log.query()] == [1, 2, 3, 4]


def test_moved_folder_keeps_moved_file_unchanged(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    path = state_dir / "audit.db"
    moved = tmp_path / "state.old"
    with AuditLog(path) as log:
        log.append(make_record(0))
        state_dir.rename(moved)
        assert "was deleted or moved away" in log.check_file()
        with pytest.raises(StoreError, match="moved away"):
            log.append(make_record(1))

    assert row_seqs(moved / "audit.db") == [1]
    assert row_seqs(path) == [1]


def test_failed_copy_retried_at_next_check(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    path = state_dir / "audit.db"
    with AuditLog(path) as log:
        log.append(make_record(0))
        shutil.rmtree(state_dir)
        # A file in the folder's place: the copy cannot be written.
        state_dir.write_text("not a folder")
        problem = log.check_file()
        assert f"cannot copy that file's rows (up to row 1) into {state_dir}" in problem
        assert "keep edge-gate.service running" in problem

        state_dir.unlink()
        assert "back to" in log.check_file()
    assert row_seqs(path) == [1]


def test_moved_back_file_writable_again(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    moved = tmp_path / "state.old"
    with AuditLog(state_dir / "audit.db") as log:
        log.append(make_record(0))
        state_dir.rename(moved)
        # A file in the folder's place stops the copy, so nothing new is there.
        state_dir.write_text("not a folder")
        assert "cannot copy" in log.check_file()

        state_dir.unlink()
        moved.rename(state_dir)
        assert log.check_file() == ""
        assert log.file_problem == ""
        log.append(make_record(1))
    assert row_seqs(state_dir / "audit.db") == [1, 2]
    assert list(tmp_path.glob("state/audit.db.saved-*")) == []


def test_replaced_file_left_alone_and_copy_saved(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    # Another folder, so that the other log's head file stays apart.
    other = tmp_path / "other" / "audit.db"
    other.parent.mkdir()
    with AuditLog(other) as other_log:
        other_log.append(make_record(7))
    with AuditLog(path) as log:
        log.append_many([make_record(0), make_record(1)])
        other.replace(path)
        replacement = path.read_bytes()

        with pytest.raises(StoreError, match="was replaced by another file"):
            log.append(make_record(2))
        problem = log.check_file()
        (saved,) = tmp_path.glob("audit.db.saved-*")
        assert str(saved) in problem
        assert "keep both files as evidence" in problem

    assert path.read_bytes() == replacement
    assert row_seqs(saved) == [1, 2]


def test_prune_refused_after_deletion(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.db"
    path.parent.mkdir()
    with AuditLog(path) as log:
        log.append(make_record(0))
        shutil.rmtree(path.parent)
        with pytest.raises(StoreError, match="cannot prune the audit log"):
            log.prune(1, now=T0 + timedelta(days=30))
        assert log.head()[0] == 1


def test_failed_head_write_reported_then_retried(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    head_path = tmp_path / AUDIT_HEAD_NAME
    with AuditLog(path) as log:
        log.append(make_record(0))
        # A folder in the head file's place makes the rename fail.
        head_path.unlink()
        head_path.mkdir()
        entry = log.append(make_record(1))
        assert str(head_path) in log.head_write_problem
        assert "rows cut from its end" in log.head_write_problem
        # The row itself is written.
        assert log.head() == (2, entry.row_hash)
        assert log.file_problem == ""

        head_path.rmdir()
        assert log.check_file() == ""
        assert log.head_write_problem == ""
        assert log.read_head_file() == (2, entry.row_hash)


def test_full_database_error_says_free_space(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        log.append(make_record(0))
        # SQLite's page limit gives the same SQLITE_FULL as a full disk.
        pages = log._db.execute("PRAGMA page_count").fetchone()[0]
        log._db.execute(f"PRAGMA max_page_count = {pages}")
        big = [
            AuditRecord(T0, f"tx-{i}", "none", "x" * 500, kind="service")
            for i in range(50)
        ]
        with pytest.raises(StoreError, match="database or disk is full") as caught:
            log.append_many(big)
    message = str(caught.value)
    assert f"The file system of {tmp_path} ([store] state_dir) is full" in message
    assert "so nothing was written: free space on that file system" in message


def test_deleted_copy_copied_again(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    path = state_dir / "audit.db"
    with AuditLog(path) as log:
        log.append_many([make_record(index) for index in range(3)])
        shutil.rmtree(state_dir)
        assert "back to" in log.check_file()
        assert row_seqs(path) == [1, 2, 3]

        # A cleanup that runs twice deletes the copy too.
        shutil.rmtree(state_dir)
        problem = log.check_file()
        assert f"Its earlier copy {path} was deleted, moved or replaced" in problem
        assert "copied that file's rows (up to row 3) back to" in problem
        assert log.unsaved_head_seq is None
    assert row_seqs(path) == [1, 2, 3]


def test_deleted_saved_copy_saved_again(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    other = tmp_path / "other" / "audit.db"
    other.parent.mkdir()
    with AuditLog(other) as other_log:
        other_log.append(make_record(7))
    with AuditLog(path) as log:
        log.append_many([make_record(0), make_record(1)])
        other.replace(path)
        log.check_file()
        (first,) = tmp_path.glob("audit.db.saved-*")

        first.unlink()
        problem = log.check_file()
        (second,) = tmp_path.glob("audit.db.saved-*")
        assert second != first
        assert f"Its earlier copy {first} was deleted" in problem
        assert f"saved that file's rows (up to row 2) as {second}" in problem
    assert row_seqs(second) == [1, 2]


def test_saved_copy_moved_to_path_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        log.append_many([make_record(0), make_record(1)])
        path.unlink()
        # A file put at the path meanwhile sends the copy beside it.
        path.write_bytes(b"")
        log.check_file()
        (saved,) = tmp_path.glob("audit.db.saved-*")

        # The engineer moves the saved copy to the path, as the hold tells them to.
        saved.replace(path)
        problem = log.check_file()
        assert f"copied that file's rows (up to row 2) back to {path}" in problem
        assert list(tmp_path.glob("audit.db.saved-*")) == []
    assert row_seqs(path) == [1, 2]


def test_unsaved_rows_named_until_copied(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    with AuditLog(state_dir / "audit.db") as log:
        log.append_many([make_record(0), make_record(1)])
        assert log.unsaved_head_seq is None
        shutil.rmtree(state_dir)
        state_dir.write_text("not a folder")
        assert "cannot copy" in log.check_file()
        assert log.unsaved_head_seq == 2

        state_dir.unlink()
        log.check_file()
        assert log.unsaved_head_seq is None


def test_commit_into_lost_file_names_rows(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        log.append(make_record(0))

        # Delete the file after the check before the transaction, at its
        # COMMIT, as a concurrent rm -rf would.
        def delete_at_commit(statement: str) -> None:
            if statement == "COMMIT" and path.exists():
                path.unlink()

        log._db.set_trace_callback(delete_at_commit)
        with pytest.raises(RowsInLostFileError) as caught:
            log.append(make_record(1))
        log._db.set_trace_callback(None)
    assert [entry.seq for entry in caught.value.entries] == [2]
    assert caught.value.entries[0].record == make_record(1)
    assert isinstance(caught.value, StoreError)
