"""``edge-gate log verify --offline`` names the row where the chain breaks.

Each case writes a 17-row audit log with the real :class:`AuditLog`,
tampers with the SQLite file, reopens it for writing as a restarted daemon
would, and then runs the command on the real files.
"""

from __future__ import annotations

import json
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
