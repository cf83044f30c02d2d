"""The audit log's head file: truncation, rollback and a deleted audit.db."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_gate.errors import StoreError
from edge_gate.store import AuditLog, AuditRecord
from edge_gate.store._audit import AUDIT_HEAD_NAME, HEAD_RESTART_REASON

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def make_record(index: int) -> AuditRecord:
    return AuditRecord(
        time_utc=T0 + timedelta(minutes=index),
        transaction_id=f"tx-{index:04d}",
        outcome="accepted",
        reason="both modalities matched",
        lane_id="lane-1",
    )


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        for index in range(10):
            log.append(make_record(index))
    return path


def read_head_file(log_path: Path) -> tuple[int, str]:
    data = json.loads((log_path.parent / AUDIT_HEAD_NAME).read_text("utf-8"))
    return int(data["head_seq"]), str(data["head_hash"])


def truncate_last_row(path: Path) -> None:
    """Delete the newest row and move the chain head back, as an attacker."""
    with sqlite3.connect(path) as db:
        seq, prev_hash = db.execute(
            "SELECT seq, prev_hash FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        db.execute("DELETE FROM audit WHERE seq = ?", (seq,))
        db.execute(
            "UPDATE chain SET head_seq = ?, head_hash = ? WHERE id = 1",
            (seq - 1, prev_hash),
        )


def test_head_file_follows_each_append(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        assert read_head_file(log_path) == log.head()
        entry = log.append(make_record(10))
    assert read_head_file(log_path) == (11, entry.row_hash)


def test_truncated_end_detected_by_verify(log_path: Path) -> None:
    truncate_last_row(log_path)
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert not result.is_intact
    assert "ends at row 9" in result.problem
    assert "row 10" in result.problem


def test_truncated_end_detected_at_open(log_path: Path) -> None:
    truncate_last_row(log_path)
    with AuditLog(log_path) as log:
        assert "ends at row 9" in log.head_problem
        # The evidence stays: appending does not move the head file.
        log.append(make_record(20))
        assert read_head_file(log_path)[0] == 10
        assert not log.verify().is_intact


def test_deleted_database_detected_at_open(log_path: Path) -> None:
    log_path.unlink()
    with AuditLog(log_path) as log:
        assert "was missing" in log.head_problem
        assert "records row 10" in log.head_problem
        for index in range(100, 112):
            log.append(make_record(index))
        assert not log.verify().is_intact
    # A new chain that has grown past the old head still differs.
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert not result.is_intact
    assert "hashes differently" in result.problem


def test_deleted_database_named_offline(log_path: Path) -> None:
    log_path.unlink()
    with pytest.raises(StoreError, match="records rows that existed"):
        AuditLog(log_path, read_only=True)


def test_rewritten_row_detected(log_path: Path) -> None:
    # The head file's row rehashed, as a rewrite of the chain would.
    with sqlite3.connect(log_path) as db:
        db.execute("UPDATE audit SET row_hash = ? WHERE seq = 10", ("f" * 64,))
        db.execute("UPDATE chain SET head_hash = ? WHERE id = 1", ("f" * 64,))
    with AuditLog(log_path, read_only=True) as log:
        assert not log.verify().is_intact


def test_database_one_row_ahead_tolerated(log_path: Path) -> None:
    # A kill between the commit and the head file write.
    head_file = log_path.parent / AUDIT_HEAD_NAME
    before = head_file.read_text("utf-8")
    with AuditLog(log_path) as log:
        log.append(make_record(10))
    head_file.write_text(before, "utf-8")
    with AuditLog(log_path) as log:
        assert log.head_problem == ""
        result = log.verify()
        assert result.is_intact, result.problem
        log.append(make_record(11))
    assert read_head_file(log_path)[0] == 12


def test_pruned_head_row_tolerated(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        log.prune(1, now=T0 + timedelta(days=30))
        assert log.verify().is_intact
    with AuditLog(log_path) as log:
        assert log.head_problem == ""


def test_missing_head_file_restarted(log_path: Path) -> None:
    (log_path.parent / AUDIT_HEAD_NAME).unlink()
    with AuditLog(log_path) as log:
        assert log.head_problem == ""
        assert read_head_file(log_path) == log.head()


def test_corrupt_head_file_is_clear_error(log_path: Path) -> None:
    (log_path.parent / AUDIT_HEAD_NAME).write_text("{", "utf-8")
    with pytest.raises(StoreError, match=r"audit head file .* is not valid"):
        AuditLog(log_path)


def test_deleted_chain_record_is_verdict(log_path: Path) -> None:
    with sqlite3.connect(log_path) as db:
        db.execute("DELETE FROM audit")
        db.execute("DELETE FROM chain")
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert not result.is_intact
    assert "no head record" in result.problem


def test_deleted_chain_record_refused_by_writer(log_path: Path) -> None:
    with sqlite3.connect(log_path) as db:
        db.execute("DELETE FROM chain")
    with pytest.raises(StoreError, match="no head record"):
        AuditLog(log_path)


_WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from edge_gate.store import AuditLog, AuditRecord
log = AuditLog(Path(sys.argv[1]))
index = 0
while True:
    log.append(AuditRecord(datetime.now(UTC), f"tx-{index}", "none", "kill test"))
    index += 1
    if index == 5:
        print("writing", flush=True)
"""


def test_kill_during_appends_keeps_head_consistent(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    for _ in range(5):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline() == "writing\n"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
        with AuditLog(path) as log:
            assert log.head_problem == ""
            result = log.verify()
            assert result.is_intact, result.problem


def test_truncated_end_names_last_row(log_path: Path) -> None:
    truncate_last_row(log_path)
    with AuditLog(log_path) as log:
        at_open = log.verify()
    with AuditLog(log_path, read_only=True) as log:
        offline = log.verify()
    for result in (at_open, offline):
        assert result.cut_after_seq == 9
        assert result.first_bad_seq == 10
        assert result.rows_checked == 9
        assert "row 10 was deleted from the end" in result.problem


def test_rows_cut_without_head_named(log_path: Path) -> None:
    # Only the rows are deleted; the chain record still names row 10.
    with sqlite3.connect(log_path) as db:
        db.execute("DELETE FROM audit WHERE seq >= 8")
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert result.cut_after_seq == 7
    assert result.first_bad_seq == 8
    assert "rows 8 to 10 were deleted from the end" in result.problem


def test_every_row_cut_names_row_zero(log_path: Path) -> None:
    with sqlite3.connect(log_path) as db:
        db.execute("DELETE FROM audit")
        db.execute("UPDATE chain SET head_seq = 0, head_hash = anchor_hash")
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert result.cut_after_seq == 0
    assert "rows 1 to 10 were deleted" in result.problem


def test_rewritten_head_row_named(log_path: Path) -> None:
    # The head row and the chain record rehashed together: the head file
    # still contains the old hash of row 10.
    with sqlite3.connect(log_path) as db:
        db.execute("UPDATE audit SET row_hash = ? WHERE seq = 10", ("f" * 64,))
        db.execute("UPDATE chain SET head_hash = ? WHERE id = 1", ("f" * 64,))
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert result.first_bad_seq == 10
    assert result.cut_after_seq is None


def test_head_record_moved_back_named(log_path: Path) -> None:
    with sqlite3.connect(log_path) as db:
        prev_hash = db.execute("SELECT row_hash FROM audit WHERE seq = 8").fetchone()
        db.execute(
            "UPDATE chain SET head_seq = 8, head_hash = ? WHERE id = 1", prev_hash
        )
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert result.first_bad_seq == 9
    assert result.cut_after_seq is None
    assert "rows 9 to 10 follow the chain head row 8" in result.problem


def test_recreated_database_names_no_row(log_path: Path) -> None:
    log_path.unlink()
    with AuditLog(log_path) as log:
        log.append(make_record(100))
        result = log.verify()
    assert result.first_bad_seq is None
    assert result.cut_after_seq is None
    assert "was missing and has been created empty" in result.problem


def cut_end_and_move_head(path: Path, keep_rows: int) -> None:
    """Delete the rows after ``keep_rows`` and point the chain record at it."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM audit WHERE seq > ?", (keep_rows,))
        (row_hash,) = db.execute(
            "SELECT row_hash FROM audit WHERE seq = ?", (keep_rows,)
        ).fetchone()
        db.execute(
            "UPDATE chain SET head_seq = ?, head_hash = ? WHERE id = 1",
            (keep_rows, row_hash),
        )


@pytest.mark.parametrize(
    "keep_rows",
    [
        pytest.param(10, id="head-file-deleted"),
        pytest.param(7, id="head-file-deleted-and-end-cut"),
    ],
)
def test_missing_head_file_leaves_end_unverified(
    log_path: Path, keep_rows: int
) -> None:
    (log_path.parent / AUDIT_HEAD_NAME).unlink()
    if keep_rows < 10:
        cut_end_and_move_head(log_path, keep_rows)

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()

    assert not result.is_intact
    assert result.verdict == "end_unverified"
    assert result.rows_checked == keep_rows
    assert result.head_seq == keep_rows
    assert f"{AUDIT_HEAD_NAME} is missing" in result.problem
    assert result.to_json_dict()["verdict"] == "end_unverified"


def test_missing_head_file_restart_recorded(log_path: Path) -> None:
    (log_path.parent / AUDIT_HEAD_NAME).unlink()
    with AuditLog(log_path, read_only=True) as log:
        head_before = log.head()

    with AuditLog(log_path) as log:
        assert log.head_problem == ""
        (restart,) = log.query(kind="service")
        result = log.verify()

    assert restart.seq == 11
    assert restart.record.reason.startswith(HEAD_RESTART_REASON)
    assert f"at row 10 (hash {head_before[1]})" in restart.record.reason
    assert "audit log head at stop" in restart.record.reason
    assert read_head_file(log_path) == (11, restart.row_hash)
    assert result.is_intact, result.problem
    assert result.head_restart_seqs == (11,)
    assert result.to_json_dict()["head_restart_seqs"] == [11]


def test_present_head_file_records_no_restart(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        assert log.query(kind="service") == []
        assert log.verify().head_restart_seqs == ()


@pytest.mark.parametrize(
    ("contents", "detail"),
    [
        pytest.param("{not json", "it is not JSON", id="garbage"),
        pytest.param("", "it is empty", id="empty"),
        pytest.param("[1, 2]", "head_seq is not a whole number", id="json-list"),
        pytest.param(
            '{"head_seq": "10", "head_hash": "00"}',
            "head_seq is not a whole number",
            id="seq-as-text",
        ),
        pytest.param(
            '{"head_seq": 10, "head_hash": "xyz"}',
            "head_hash is not 64 hexadecimal digits",
            id="short-hash",
        ),
        pytest.param(b"\xff\xfe".decode("latin-1"), "it is not UTF-8", id="latin-1"),
    ],
)
def test_invalid_head_file_is_broken_verdict(
    log_path: Path, contents: str, detail: str
) -> None:
    (log_path.parent / AUDIT_HEAD_NAME).write_text(contents, "latin-1")

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()

    assert not result.is_intact
    assert result.verdict == "broken"
    assert f"{AUDIT_HEAD_NAME} is not valid ({detail}" in result.problem
    assert "rows cut from the end cannot be detected" in result.problem


def test_head_file_folder_is_broken_verdict(log_path: Path) -> None:
    head_file = log_path.parent / AUDIT_HEAD_NAME
    head_file.unlink()
    head_file.mkdir()

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()

    assert result.verdict == "broken"
    assert "is not valid (it is a folder)" in result.problem


def test_invalid_head_file_at_open_has_advice(log_path: Path) -> None:
    (log_path.parent / AUDIT_HEAD_NAME).write_text("{", "utf-8")
    with pytest.raises(StoreError, match=r"move audit\.head aside") as error:
        AuditLog(log_path)
    assert "copy audit.db and audit.head as evidence" in str(error.value)


def test_cut_file_is_damaged_verdict(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        for index in range(40):
            log.append(make_record(index))
    # A file cut inside its last page, as a copy that stopped early leaves it.
    os.truncate(path, path.stat().st_size - 700)

    with AuditLog(path, read_only=True) as log:
        result = log.verify()

    assert not result.is_intact
    assert result.verdict == "damaged"
    assert f"{path} is damaged" in result.problem
    assert "SQLite reports" in result.problem
    assert "is missing (next is" not in result.problem


@pytest.mark.parametrize("read_only", [True, False], ids=["offline", "daemon"])
def test_database_folder_named(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "audit.db"
    path.mkdir()
    with pytest.raises(StoreError, match="is a folder, but it must be") as error:
        AuditLog(path, read_only=read_only)
    assert "put the audit.db file back" in str(error.value)


def test_empty_database_named_offline(log_path: Path) -> None:
    log_path.write_bytes(b"")
    with pytest.raises(StoreError, match=r"is empty \(0 bytes\)"):
        AuditLog(log_path, read_only=True)


@pytest.mark.parametrize(
    ("contents", "detail"),
    [
        pytest.param(
            json.dumps({"head_seq": 2**70, "head_hash": "a" * 64}),
            "head_seq is out of range",
            id="seq-over-sqlite-integer",
        ),
        pytest.param("[" * 200_000, "it is over 4096 bytes", id="deep-json"),
        pytest.param("[" * 4000, "it is not JSON", id="deep-json-small"),
    ],
)
def test_head_file_out_of_range_broken(
    log_path: Path, contents: str, detail: str
) -> None:
    (log_path.parent / AUDIT_HEAD_NAME).write_text(contents, "utf-8")

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert result.verdict == "broken"
    assert f"is not valid ({detail}" in result.problem

    with pytest.raises(StoreError, match=rf"is not valid: {detail}"):
        AuditLog(log_path)


def test_head_file_fifo_is_broken_verdict_without_blocking(log_path: Path) -> None:
    head_file = log_path.parent / AUDIT_HEAD_NAME
    head_file.unlink()
    os.mkfifo(head_file)
    # A child process, so that a blocking open() fails the test by its timeout
    # instead of hanging the test run.
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from edge_gate.errors import StoreError\n"
        "from edge_gate.store import AuditLog\n"
        "path = Path(sys.argv[1])\n"
        "with AuditLog(path, read_only=True) as log:\n"
        "    print(log.verify().problem)\n"
        "try:\n"
        "    AuditLog(path)\n"
        "except StoreError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(log_path)],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    verify_problem, open_error = done.stdout.splitlines()
    assert "is not valid (it is not a regular file" in verify_problem
    assert "is not valid: it is not a regular file" in open_error
