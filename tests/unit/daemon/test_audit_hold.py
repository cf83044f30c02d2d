"""The lane refuses service when audit.db is behind its head file."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_gate.store import AuditLog, AuditRecord


def write_rows(state_dir: Path, count: int) -> None:
    now = datetime.datetime.now(datetime.UTC)
    with AuditLog(state_dir / "audit.db") as log:
        for index in range(count):
            log.append(AuditRecord(now, f"tx-{index}", "none", "earlier run"))


def truncate_last_row(path: Path) -> None:
    with sqlite3.connect(path) as db:
        seq, prev_hash = db.execute(
            "SELECT seq, prev_hash FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        db.execute("DELETE FROM audit WHERE seq = ?", (seq,))
        db.execute(
            "UPDATE chain SET head_seq = ?, head_hash = ? WHERE id = 1",
            (seq - 1, prev_hash),
        )


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(truncate_last_row, "ends at row 4", id="truncated-end"),
        pytest.param(remove_database, "was missing", id="deleted-database"),
    ],
)
def test_audit_head_mismatch_holds_service(
    lane_setup: Any,
    start_lane: Any,
    damage: Callable[[Path], None],
    expected: str,
    wait_until: Callable[..., None],
) -> None:
    write_rows(lane_setup.state_dir, 5)
    damage(lane_setup.state_dir / "audit.db")
    running = start_lane(lane_setup)
    wait_until(lambda: "audit_chain" in running.status()["holds"])
    reason = running.status()["holds"]["audit_chain"]
    assert expected in reason
    assert "move audit.head aside" in reason
    assert not running.status()["in_service"]
    assert not running.runner.audit.verify().is_intact


def test_audit_head_match_in_service(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    write_rows(lane_setup.state_dir, 5)
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    assert "audit_chain" not in running.status()["holds"]
