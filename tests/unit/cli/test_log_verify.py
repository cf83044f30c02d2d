"""``edge-gate log verify --offline`` names the row where the chain breaks.

Each case writes a 17-row audit log with the real :class:`AuditLog`,
tampers with the SQLite file, reopens it for writing as a restarted daemon
would, and then runs the command on the real files.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_gate.cli import main
from edge_gate.store import AuditLog, AuditRecord

ROWS = 17
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

# A function that changes the open database, or one SQL statement.
Change = Callable[[sqlite3.Connection], None] | str


def delete_last_row_and_move_head(db: sqlite3.Connection) -> None:
    seq, prev_hash = db.execute(
        "SELECT seq, prev_hash FROM audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    db.execute("DELETE FROM audit WHERE seq = ?", (seq,))
    db.execute(
        "UPDATE chain SET head_seq = ?, head_hash = ? WHERE id = 1",
        (seq - 1, prev_hash),
    )


def delete_every_row_and_reset_head(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit")
    db.execute("UPDATE chain SET head_seq = 0, head_hash = anchor_hash")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    with AuditLog(state / "audit.db") as log:
        for index in range(ROWS):
            log.append(
                AuditRecord(
                    time_utc=T0 + timedelta(minutes=index),
                    transaction_id=f"lane-1-{index:06d}",
                    outcome="accepted",
                    reason="both modalities matched",
                )
            )
    path = tmp_path / "edge-gate.toml"
    path.write_text(f'[store]\nstate_dir = "{state}"\n', encoding="utf-8")
    return path


def tamper_and_restart(config: Path, change: Change) -> Path:
    """Change ``audit.db``, then open it for writing as the daemon's start does."""
    database = config.parent / "state" / "audit.db"
    with sqlite3.connect(database) as db:
        if isinstance(change, str):
            db.execute(change)
        else:
            change(db)
    AuditLog(database).close()
    return database


@pytest.mark.parametrize(
    ("change", "verdict", "detail"),
    [
        pytest.param(
            delete_last_row_and_move_head,
            "audit log BROKEN: the log was cut after row 16. The log ends at row 16",
            "row 17 was deleted from the end",
            id="last-row-and-head",
        ),
        pytest.param(
            "DELETE FROM audit WHERE seq = 17",
            "audit log BROKEN: the log was cut after row 16. The log ends at row 16",
            "row 17 was deleted from the end",
            id="last-row-only",
        ),
        pytest.param(
            "DELETE FROM audit WHERE seq >= 15",
            "audit log BROKEN: the log was cut after row 14. The log ends at row 14",
            "rows 15 to 17 were deleted from the end",
            id="last-three-rows",
        ),
        pytest.param(
            delete_every_row_and_reset_head,
            "audit log BROKEN: no row is left. The log ends at row 0",
            "rows 1 to 17 were deleted from the end",
            id="every-row",
        ),
        pytest.param(
            "UPDATE audit SET outcome = 'rejected' WHERE seq = 15",
            "audit log BROKEN at row 15: row 15 was changed after it was written",
            "",
            id="changed-row",
        ),
    ],
)
def test_verify_offline_names_real_row(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    verdict: str,
    detail: str,
) -> None:
    tamper_and_restart(config, change)

    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.startswith(verdict), captured.out
    assert detail in captured.out
    assert len(captured.out.splitlines()) == 1
    assert "Copy audit.db and audit.head" in captured.err
    assert "audit log head at start" in captured.err


def test_verify_offline_json_has_cut(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper_and_restart(config, delete_last_row_and_move_head)

    status = main(["log", "verify", "--offline", "--json", "--config", str(config)])

    result = json.loads(capsys.readouterr().out)
    assert status == 1
    assert result["rows_checked"] == ROWS - 1
    assert result["cut_after_seq"] == ROWS - 1
    assert result["first_bad_seq"] == ROWS


def test_verify_offline_intact_log(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 0
    assert captured.out.startswith(f"audit log intact: {ROWS} rows")
    assert captured.err == ""


def state_file(config: Path, name: str) -> Path:
    return config.parent / "state" / name


def test_verify_missing_head_file_unverified(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The attack: audit.head deleted, the last rows deleted, the chain record
    # moved back, all while the daemon is stopped.
    state_file(config, "audit.head").unlink()
    with sqlite3.connect(state_file(config, "audit.db")) as db:
        delete_last_row_and_move_head(db)
        delete_last_row_and_move_head(db)

    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.startswith(
        f"audit log END UNVERIFIED: {ROWS - 2} rows chain correctly to head "
        f"row {ROWS - 2} hash "
    )
    assert "audit.head is missing" in captured.out
    assert "intact" not in captured.out
    assert f"Compare head row {ROWS - 2} and hash" in captured.err
    assert "'audit log head at stop'" in captured.err


def test_verify_missing_head_file_json(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file(config, "audit.head").unlink()

    status = main(["log", "verify", "--offline", "--json", "--config", str(config)])

    result = json.loads(capsys.readouterr().out)
    assert status == 1
    assert result["verdict"] == "end_unverified"
    assert result["intact"] is False
    assert result["rows_checked"] == ROWS


def test_verify_after_head_restart_notes_row(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file(config, "audit.head").unlink()
    # The daemon's start writes a new head file and records it in the log.
    AuditLog(state_file(config, "audit.db")).close()

    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 0
    assert captured.out.startswith(f"audit log intact: {ROWS + 1} rows")
    assert f"note: row {ROWS + 1} records that audit.head was missing" in (captured.err)


def test_verify_unreadable_column_names_row(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper_and_restart(config, "UPDATE audit SET alarms = '[' WHERE seq = 14")

    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.startswith(
        "audit log BROKEN at row 14: row 14 was changed after it was written"
    )
    assert "alarms is not valid JSON" in captured.out
    assert "internal error" not in captured.err
    assert "Copy audit.db and audit.head" in captured.err


def test_verify_cut_file_is_damaged(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = state_file(config, "audit.db")
    os.truncate(database, database.stat().st_size - 700)

    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.startswith(f"audit log DAMAGED: {database} is damaged")
    assert "is missing (next is" not in captured.out
    assert "audit.db-wal" in captured.err
    assert "dmesg" in captured.err


def test_verify_invalid_head_file_is_broken(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file(config, "audit.head").write_text("{not json", "utf-8")

    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.startswith("audit log BROKEN: ")
    assert "audit.head is not valid (it is not JSON)" in captured.out
    assert "Copy audit.db and audit.head" in captured.err


def test_verify_database_folder_named(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = state_file(config, "audit.db")
    database.unlink()
    database.mkdir()

    status = main(["log", "verify", "--offline", "--config", str(config)])

    captured = capsys.readouterr()
    assert status == 1
    assert f"audit log {database} is a folder" in captured.err
    assert "disk I/O error" not in captured.err


def test_log_help_lists_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["log", "--help"])
    text = capsys.readouterr().out
    for verdict in ("intact", "BROKEN", "DAMAGED", "END UNVERIFIED"):
        assert verdict in text
    assert "exit status 1" in text
