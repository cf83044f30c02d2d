"""Tests of the audit spool on real files: round trip, modes, damage."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_gate.errors import StoreError
from edge_gate.store import AuditLog, AuditRecord, AuditSpool, SpoolIntegrityError
from edge_gate.store._audit import canonical_json

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def make_record(index: int) -> AuditRecord:
    return AuditRecord(
        time_utc=T0 + timedelta(minutes=index),
        transaction_id=f"lane-1-0a1b2c3d-{index:04d}",
        outcome="rejected",
        reason="fingerprint below threshold",
        lane_id="lane-1",
        issuing_state="VNM",
        document_number=f"C{index:07d}",
        alarms=("tailgating",),
        scores={"fingerprint": 0.1234567890123, "iris": 0.93},
        thresholds={"fingerprint": 0.42, "iris": 0.61},
        durations_ms={"document": 1200, "fingerprint": 3400.5},
        latency_ms=None,
    )


def write_spool(folder: Path, count: int = 3) -> AuditSpool:
    spool = AuditSpool(folder)
    spool.write(
        [make_record(i) for i in range(count)],
        written_utc=T0,
        lane_id="lane-1",
        state_dir="/var/lib/edge_gate",
    )
    return spool


def test_spool_round_trip_keeps_records(tmp_path: Path) -> None:
    spool = write_spool(tmp_path / "run" / "audit-spool")
    records = spool.read()
    assert records == [make_record(i) for i in range(3)]
    assert [r.to_json_dict() for r in records] == [
        make_record(i).to_json_dict() for i in range(3)
    ]
    # No temporary file is left beside the spool.
    assert [p.name for p in spool.folder.iterdir()] == ["audit-spool.json"]


def test_spool_modes_private(tmp_path: Path) -> None:
    folder = tmp_path / "audit-spool"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    old_umask = os.umask(0)
    try:
        spool = write_spool(folder)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="torn-half"),
        pytest.param(lambda data: data[:-2], id="torn-end"),
        pytest.param(lambda data: data.replace(b"C0000001", b"C0000009"), id="edited"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_damaged_spool_fails_check(tmp_path: Path, damage: object) -> None:
    spool = write_spool(tmp_path)
    data = spool.path.read_bytes()
    changed = damage(data)  # type: ignore[operator]
    assert changed != data
    spool.path.write_bytes(changed)
    with pytest.raises(SpoolIntegrityError):
        spool.read()


def test_spool_with_valid_hash_but_invalid_record(tmp_path: Path) -> None:
    spool = write_spool(tmp_path, count=1)
    document = json.loads(spool.path.read_text(encoding="utf-8"))
    document["records"][0]["outcome"] = "waved_through"
    del document["sha256"]
    document["sha256"] = hashlib.sha256(canonical_json(document)).hexdigest()
    spool.path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SpoolIntegrityError, match="record 0 is invalid"):
        spool.read()


def test_recomputed_hash_edit_passes_check(tmp_path: Path) -> None:
    # The SHA-256 has no key, so it catches torn writes and careless edits.
    # Only the folder's 0700 mode keeps other users from making this edit.
    spool = write_spool(tmp_path, count=1)
    document = json.loads(spool.path.read_text(encoding="utf-8"))
    document["records"][0]["document_number"] = "EDITED001"
    del document["sha256"]
    document["sha256"] = hashlib.sha256(canonical_json(document)).hexdigest()
    spool.path.write_text(json.dumps(document), encoding="utf-8")
    (record,) = spool.read()
    assert record.document_number == "EDITED001"


def test_spool_contents_name_lane_and_folder(tmp_path: Path) -> None:
    contents = write_spool(tmp_path, count=2).read_contents()
    assert contents.lane_id == "lane-1"
    assert contents.state_dir == "/var/lib/edge_gate"
    assert contents.records == (make_record(0), make_record(1))


def test_spool_without_lane_id_fails_check(tmp_path: Path) -> None:
    spool = write_spool(tmp_path, count=1)
    document = json.loads(spool.path.read_text(encoding="utf-8"))
    del document["lane_id"]
    del document["sha256"]
    document["sha256"] = hashlib.sha256(canonical_json(document)).hexdigest()
    spool.path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SpoolIntegrityError, match="no lane_id or state_dir"):
        spool.read()


def test_set_aside_renames_spool(tmp_path: Path) -> None:
    spool = write_spool(tmp_path)
    set_aside_path = spool.set_aside(T0)
    assert not spool.exists()
    assert set_aside_path.name.startswith("audit-spool.invalid-20260301T080000")
    assert spool.invalid_files() == [set_aside_path]


def test_unwritable_folder_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "run"
    blocker.write_text("a file where the runtime folder should be", encoding="utf-8")
    with pytest.raises(StoreError, match="cannot write audit spool"):
        write_spool(blocker / "audit-spool")


def test_audit_log_contains_exact_record(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        log.append(make_record(1))
        assert log.contains(make_record(1))
        assert not log.contains(make_record(2))
        changed = AuditRecord(**{**make_record(1).__dict__, "outcome": "accepted"})
        assert not log.contains(changed)


def test_deeply_nested_spool_is_integrity_error(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path / "audit-spool")
    spool.folder.mkdir(mode=0o700)
    spool.path.write_text("[" * 100_000 + "]" * 100_000, "utf-8")

    with pytest.raises(SpoolIntegrityError, match="nests JSON too deeply"):
        spool.read()
