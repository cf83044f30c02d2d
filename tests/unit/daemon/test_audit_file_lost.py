"""The lane when its audit.db is deleted, moved or full while it runs.

A real lane runner writes a real SQLite file in a temporary state folder.
The tests remove or rename that folder under it, as ``rm -rf`` or ``mv``
would.
"""

from __future__ import annotations

import datetime
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_gate.errors import ControlError, StoreError
from edge_gate.store import AUDIT_DB_NAME, AuditLog, AuditRecord, AuditSpool
from edge_gate.store._audit import AUDIT_HEAD_NAME


def move_aside(state_dir: Path) -> None:
    state_dir.rename(state_dir.with_name("state.old"))


def open_and_walk(running: Any, reason: str, wait_until: Callable[..., None]) -> int:
    """Open the lane by hand, let one person through, and return the audit row."""
    opened = running.runner.manual_open(reason)
    running.walker.walk_through()
    wait_until(lambda: running.status()["state"] != "manual_passage")
    seq: int = opened["audit_seq"]
    return seq


def unlock_level(running: Any) -> int:
    level: int = running.pins.pin(running.config.turnstile.unlock_pin).state
    return level


@pytest.mark.parametrize(
    "lose_folder",
    [
        pytest.param(shutil.rmtree, id="deleted"),
        pytest.param(move_aside, id="moved"),
    ],
)
def test_lost_state_folder_holds_and_keeps_rows(
    lane_setup: Any,
    start_lane: Any,
    wait_until: Callable[..., None],
    lose_folder: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    audit_path = lane_setup.state_dir / AUDIT_DB_NAME
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    opened_seq = open_and_walk(running, "ambulance crew", wait_until)

    lose_folder(lane_setup.state_dir)
    wait_until(lambda: "audit_file" in running.status()["holds"], timeout_s=5)
    status = running.status()
    reason = status["holds"]["audit_file"]
    assert f"audit log {audit_path} " in reason
    assert "restart edge-gate.service" in reason
    assert "kept in the audit spool" in reason
    assert not status["in_service"]

    # The engineer's opening is refused instead of going into the lost file.
    with pytest.raises(ControlError, match="the barrier stays locked") as refused:
        running.runner.manual_open("after the folder was lost")
    assert str(audit_path) in str(refused.value)
    assert running.status()["state"] != "manual_passage"
    assert unlock_level(running) == 0
    with caplog.at_level(logging.ERROR, logger="edge_gate.daemon._runner"):
        running.close()
    stop_lines = [
        r.getMessage() for r in caplog.records if "before stop" in r.getMessage()
    ]
    assert len(stop_lines) == 1
    assert "kept in the audit spool" in stop_lines[0]
    assert "audit.db was deleted, moved or replaced" in stop_lines[0]

    # The rows of the open file are back at the path, chained and intact.
    with AuditLog(audit_path, read_only=True) as audit:
        assert audit.verify().is_intact
        restored = {entry.seq: entry.record for entry in audit.query()}
    assert restored[opened_seq].reason == "ambulance crew"
    # The finding waits in the spool, for the log's next start.
    spool = AuditSpool(lane_setup.work / "run" / "audit-spool")
    (spooled,) = spool.read()
    assert spooled.kind == "service"
    assert spooled.reason.startswith(f"audit log {audit_path} ")

    again = start_lane(lane_setup)
    rows = again.audit()
    assert again.runner.audit.verify().is_intact
    assert [e.record.reason for e in rows if e.seq == opened_seq] == ["ambulance crew"]
    assert rows[-1].record == spooled
    assert not spool.exists()


def test_moved_back_folder_ends_hold(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    state_dir = lane_setup.state_dir
    moved = state_dir.with_name("state.old")
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    opened_seq = open_and_walk(running, "ambulance crew", wait_until)

    # A file in the folder's place stops the copy of the open audit.db.
    state_dir.rename(moved)
    state_dir.write_text("not a folder")
    wait_until(lambda: "audit_file" in running.status()["holds"], timeout_s=5)
    assert "cannot copy" in running.status()["holds"]["audit_file"]

    state_dir.unlink()
    moved.rename(state_dir)
    wait_until(running.idle_in_service, timeout_s=5)
    rows = running.audit()
    assert running.runner.audit.verify().is_intact
    assert rows[-1].seq == opened_seq + 1
    assert rows[-1].record.kind == "service"
    assert "cannot copy" in rows[-1].record.reason
    assert not AuditSpool(lane_setup.work / "run" / "audit-spool").exists()


def test_unwritable_spool_named_in_hold(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    spool_folder = lane_setup.work / "run" / "audit-spool"
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    # A file in the spool folder's place: no spool file can be written.
    shutil.rmtree(spool_folder, ignore_errors=True)
    spool_folder.write_text("not a folder")

    shutil.rmtree(lane_setup.state_dir)
    wait_until(lambda: "audit_file" in running.status()["holds"], timeout_s=5)
    wait_until(
        lambda: "in memory only" in running.status()["holds"]["audit_file"],
        timeout_s=5,
    )
    reason = running.status()["holds"]["audit_file"]
    assert "1 audit record is in memory only" in reason
    assert "a stop loses them" in reason


def test_unwritable_head_file_holds_until_written(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    head_path = lane_setup.state_dir / AUDIT_HEAD_NAME
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)

    # A folder in its place makes every head file write fail.
    head_path.unlink()
    head_path.mkdir()
    opened_seq = open_and_walk(running, "ambulance crew", wait_until)
    wait_until(lambda: "audit_file" in running.status()["holds"], timeout_s=5)
    reason = running.status()["holds"]["audit_file"]
    assert f"cannot write audit head file {head_path}" in reason
    assert running.runner.audit.head()[0] == opened_seq
    results = running.runner.control_handlers()["selftest"]({})
    (audit_check,) = [r for r in results if r["check"] == "audit_log"]
    assert not audit_check["ok"]
    assert str(head_path) in audit_check["detail"]

    head_path.rmdir()
    wait_until(running.idle_in_service, timeout_s=5)
    assert running.runner.audit.read_head_file() == running.runner.audit.head()


def test_full_audit_log_refuses_open_naming_fix(
    lane: Any, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    audit = lane.runner.audit
    # SQLite's page limit gives the SQLITE_FULL error of a full disk.
    pages = audit._db.execute("PRAGMA page_count").fetchone()[0]
    audit._db.execute(f"PRAGMA max_page_count = {pages}")
    # Fill the last page with rows down to a one-letter reason.
    now = datetime.datetime.now(datetime.UTC)
    for size in (400, 100, 20, 1):
        filler = AuditRecord(now, "", "none", "x" * size, kind="service")
        for _ in range(200):
            try:
                audit.append(filler)
            except StoreError:
                break

    with pytest.raises(ControlError, match="the barrier stays locked") as refused:
        lane.runner.manual_open("ambulance crew")
    message = str(refused.value)
    assert "database or disk is full" in message
    assert f"file system of {lane.setup.state_dir} ([store] state_dir)" in message
    assert "free space on that file system" in message
    assert unlock_level(lane) == 0


def test_copy_deleted_again_copied_again(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    audit_path = lane_setup.state_dir / AUDIT_DB_NAME
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    opened_seq = open_and_walk(running, "ambulance crew", wait_until)
    shutil.rmtree(lane_setup.state_dir)
    wait_until(
        lambda: "copied" in running.status()["holds"].get("audit_file", ""),
        timeout_s=5,
    )

    # A cleanup script that runs twice deletes the copy too.
    shutil.rmtree(lane_setup.state_dir)
    wait_until(
        lambda: "earlier copy" in running.status()["holds"].get("audit_file", ""),
        timeout_s=5,
    )
    wait_until(audit_path.exists, timeout_s=5)
    reason = running.status()["holds"]["audit_file"]
    assert f"Its earlier copy {audit_path} was deleted" in reason
    assert "restart edge-gate.service" in reason
    running.close()

    again = start_lane(lane_setup)
    rows = again.audit()
    assert again.runner.audit.verify().is_intact
    assert [e.record.reason for e in rows if e.seq == opened_seq] == ["ambulance crew"]


def test_stop_right_after_deletion_copies(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    audit_path = lane_setup.state_dir / AUDIT_DB_NAME
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    opened_seq = open_and_walk(running, "ambulance crew", wait_until)

    # rm -rf and systemctl restart, before the next housekeeping pass.
    shutil.rmtree(lane_setup.state_dir)
    running.close()

    with AuditLog(audit_path, read_only=True) as audit:
        assert audit.verify().is_intact
        restored = {entry.seq: entry.record for entry in audit.query()}
    assert restored[opened_seq].reason == "ambulance crew"


def test_stop_with_failed_copy_names_lost_rows(
    lane_setup: Any,
    start_lane: Any,
    wait_until: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    opened_seq = open_and_walk(running, "ambulance crew", wait_until)

    # A file in the folder's place stops the copy.
    shutil.rmtree(lane_setup.state_dir)
    lane_setup.state_dir.write_text("not a folder")
    with caplog.at_level(logging.ERROR, logger="edge_gate.daemon._runner"):
        running.close()

    lost_lines = [
        r.getMessage()
        for r in caplog.records
        if "are lost at this stop" in r.getMessage()
    ]
    assert len(lost_lines) == 1
    assert f"audit rows up to row {opened_seq} are lost" in lost_lines[0]
    assert f"cannot copy that file's rows (up to row {opened_seq})" in lost_lines[0]
    spool_path = lane_setup.work / "run" / "audit-spool"
    assert f"kept in the audit spool {spool_path}" in lost_lines[0]


def test_manual_open_into_lost_file(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    audit_path = lane_setup.state_dir / AUDIT_DB_NAME
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)

    # audit.db is deleted after the check before the row's transaction, at
    # its COMMIT, as a concurrent rm would.
    is_armed = False

    def delete_at_commit(statement: str) -> None:
        nonlocal is_armed
        is_armed = is_armed or "ambulance crew" in statement
        if statement == "COMMIT" and is_armed and audit_path.exists():
            audit_path.unlink()

    running.runner.audit._db.set_trace_callback(delete_at_commit)
    with pytest.raises(ControlError, match="the barrier stays locked"):
        running.runner.manual_open("ambulance crew")
    running.runner.audit._db.set_trace_callback(None)
    assert unlock_level(running) == 0
    wait_until(
        lambda: "copied" in running.status()["holds"].get("audit_file", ""),
        timeout_s=5,
    )
    running.close()

    again = start_lane(lane_setup)
    rows = again.audit()
    (opened,) = [e for e in rows if e.record.reason == "ambulance crew"]
    not_done = [e.record for e in rows if e.seq > opened.seq]
    reasons = [r.reason for r in not_done if r.kind == "manual_open"]
    assert reasons == [
        f"manual opening of row {opened.seq} did not happen: "
        "audit.db was lost while the row was written"
    ]
    assert [r.outcome for r in not_done if r.kind == "manual_open"] == ["none"]


def test_log_verify_names_lost_file(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    from edge_gate.daemon._field import FieldCommands

    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    verify = FieldCommands(running.runner).log_verify
    assert verify({})["file_problem"] == ""

    shutil.rmtree(lane_setup.state_dir)
    wait_until(lambda: "audit_file" in running.status()["holds"], timeout_s=5)
    # The open file's chain is still intact; the result reports that it is not at
    # its path any more.
    result = verify({})
    assert result["verdict"] == "intact"
    assert str(lane_setup.state_dir / AUDIT_DB_NAME) in result["file_problem"]
