"""Tests that audit records whose write failed survive a daemon restart.

The audit log fails through real causes here: another SQLite connection
holds the write lock, or the state folder is a tmpfs filled to the last
byte. The spool is beside the control socket, on another file system.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_gate.cli import main as cli_main
from edge_gate.store import AUDIT_DB_NAME, AuditLog, AuditRecord, AuditSpool

DOCUMENT_NUMBER = "C4X7M2Q91"


def spool_of(setup: Any) -> AuditSpool:
    return AuditSpool(setup.work / "run" / "audit-spool")


def transactions(audit: Any) -> list[Any]:
    return [e for e in audit.query() if e.record.kind == "transaction"]


def test_torn_spool_set_aside_holds_service(
    lane_setup: Any, start_lane: Any, caplog: Any, wait_until: Callable[..., None]
) -> None:
    spool = spool_of(lane_setup)
    spool.folder.mkdir(parents=True)
    spool.path.write_text('{"format": "edge_gate audit spool", "records": [{"ti')

    with caplog.at_level(logging.ERROR, logger="edge_gate.daemon._audit_spool"):
        running = start_lane(lane_setup)
    wait_until(lambda: "audit_spool" in running.status()["holds"])

    # The torn file is renamed, not deleted, and the lane is out of service.
    (set_aside_path,) = spool.invalid_files()
    assert not spool.exists()
    assert set_aside_path.read_text().startswith('{"format": "edge_gate audit spool"')
    reason = running.status()["holds"]["audit_spool"]
    assert str(set_aside_path) in reason
    assert "delete it and restart edge-gate.service" in reason
    assert not running.status()["in_service"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(str(set_aside_path) in message for message in errors)

    # After a restart the hold remains while the set-aside file remains.
    running.close()
    again = start_lane(lane_setup)
    assert "audit_spool" in again.status()["holds"]
    assert not again.status()["in_service"]


@pytest.mark.parametrize(
    ("spool_lane", "spool_state_dir"),
    [
        pytest.param("lane-other", None, id="other-lane"),
        pytest.param(None, "/var/lib/edge_gate-old", id="state-dir-moved"),
    ],
)
def test_foreign_spool_set_aside_holds_service(
    lane_setup: Any,
    start_lane: Any,
    wait_until: Callable[..., None],
    spool_lane: str | None,
    spool_state_dir: str | None,
) -> None:
    lane_id = "lane-7"
    lane_setup.sections["daemon"]["lane_id"] = lane_id
    state_dir = str(lane_setup.state_dir)
    now = datetime.datetime.now(datetime.UTC)
    foreign = AuditRecord(now, "", "none", "written elsewhere", kind="service")
    spool = spool_of(lane_setup)
    spool.write(
        [foreign],
        written_utc=now,
        lane_id=spool_lane or lane_id,
        state_dir=spool_state_dir or state_dir,
    )

    running = start_lane(lane_setup)
    wait_until(lambda: "audit_spool" in running.status()["holds"])

    # No spooled record joins this lane's chain, and the file is kept.
    records = [entry.record for entry in running.runner.audit.query()]
    assert foreign not in records
    (set_aside_path,) = spool.invalid_files()
    assert not spool.exists()
    reason = running.status()["holds"]["audit_spool"]
    assert repr(spool_lane or lane_id) in reason
    assert repr(spool_state_dir or state_dir) in reason
    assert repr(lane_id) in reason
    assert repr(state_dir) in reason
    assert str(set_aside_path) in reason
    assert "delete it and restart edge-gate.service" in reason
    assert not running.status()["in_service"]


@pytest.fixture
def write_lock(lane_setup: Any) -> Iterator[sqlite3.Connection]:
    """A second connection that can take audit.db's SQLite write lock.

    The log gets one row first, because opening an empty log writes its
    chain record and would wait for the lock too.
    """
    now = datetime.datetime.now(datetime.UTC)
    with AuditLog(lane_setup.state_dir / AUDIT_DB_NAME) as log:
        log.append(AuditRecord(now, "", "none", "earlier run", kind="service"))
    connection = sqlite3.connect(
        lane_setup.state_dir / AUDIT_DB_NAME, isolation_level=None
    )
    yield connection
    connection.close()


def test_spooled_crossing_replayed_after_lock(
    lane_setup: Any,
    start_lane: Any,
    write_lock: sqlite3.Connection,
    wait_until: Callable[..., None],
) -> None:
    spool = spool_of(lane_setup)
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)

    # The appends wait 5 s for the lock (busy_timeout), then fail.
    write_lock.execute("BEGIN IMMEDIATE")
    lane_setup.reader.present(lane_setup.mrz_lines())
    wait_until(lambda: "audit" in running.status()["holds"], timeout_s=30)
    running.close()
    (spooled,) = spool.read()
    assert spooled.document_number == DOCUMENT_NUMBER
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.folder.stat().st_mode) == 0o700

    # The next start cannot append either, so the spool stays and so does the hold.
    again = start_lane(lane_setup)
    assert "audit" in again.status()["holds"]
    assert not again.status()["in_service"]
    assert spool.read() == [spooled]

    # Once the lock is gone, housekeeping appends the record once.
    write_lock.execute("ROLLBACK")
    wait_until(again.idle_in_service, timeout_s=30)
    assert not spool.exists()
    (entry,) = transactions(again.runner.audit)
    assert entry.record == spooled
    assert again.runner.audit.verify().is_intact


def test_large_spool_replayed_in_commits_that_extend_start(
    lane_setup: Any,
    notify_socket: Any,
    start_daemon: Callable[..., subprocess.Popen[str]],
    stop_daemon: Callable[..., tuple[int, str]],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    config = lane_setup.config()
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    records = [
        AuditRecord(
            start + datetime.timedelta(milliseconds=index),
            f"tx-{index}",
            "rejected",
            "fingerprint below threshold",
            lane_id=config.daemon.lane_id,
            document_number=f"C{index:08d}",
            scores={"fingerprint": 0.31},
            thresholds={"fingerprint": 0.42},
        )
        for index in range(2500)
    ]
    spool_of(lane_setup).write(
        records,
        written_utc=start,
        lane_id=config.daemon.lane_id,
        state_dir=config.store.state_dir,
    )
    # An earlier replay committed the first 1,000 records and was then killed.
    with AuditLog(lane_setup.state_dir / AUDIT_DB_NAME) as audit:
        audit.append_many(records[:1000])

    daemon = start_daemon(
        ["-m", "edge_gate", "run", "--config", str(config_path)], notify_socket
    )
    try:
        notify_socket.wait_for("READY=1", timeout_s=60)
    finally:
        exit_status, stderr = stop_daemon(daemon)
    assert exit_status == 0, stderr

    # Two commits (1,000 and 500 records), each announced to systemd.
    extensions = [
        message.splitlines()
        for _, message in notify_socket.messages
        if message.startswith("EXTEND_TIMEOUT_USEC=")
    ]
    assert extensions == [
        [
            "EXTEND_TIMEOUT_USEC=30000000",
            f"STATUS=starting: {count} of 1500 audit spool records appended",
        ]
        for count in (1000, 1500)
    ]
    with AuditLog(lane_setup.state_dir / AUDIT_DB_NAME, read_only=True) as audit:
        assert audit.verify().is_intact
        replayed = [e.record for e in audit.query(kind="transaction", limit=100_000)]
    assert replayed == records
    assert not spool_of(lane_setup).exists()


# Root ignores file modes, so the test fills the state folder's file system
# instead. It is a small tmpfs in a private mount namespace that only the
# daemons share.
_TMPFS_MOUNT_SCRIPT = (
    'mount -t tmpfs -o size=8m,mode=0700 tmpfs "$1" && cp -a "$2"/. "$1"/ '
    "&& echo mounted && exec sleep 600"
)


@pytest.fixture
def full_state_namespace(lane_setup: Any) -> Iterator[Callable[..., Any]]:
    """Put the state folder on a tmpfs and return a namespace command builder."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs in a mount namespace")
    state_copy = lane_setup.work / "state-copy"
    subprocess.run(["cp", "-a", str(lane_setup.state_dir), str(state_copy)], check=True)
    holder = subprocess.Popen(
        [
            *("unshare", "--mount", "--propagation", "private", "sh", "-c"),
            *(_TMPFS_MOUNT_SCRIPT, "sh", str(lane_setup.state_dir), str(state_copy)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    if holder.stdout.readline().strip() != "mounted":
        holder.kill()
        pytest.skip(f"cannot mount a tmpfs: {holder.communicate()[1]!r}")

    def in_namespace(*command: str) -> list[str]:
        return ["nsenter", "--target", str(holder.pid), "--mount", "--", *command]

    yield in_namespace
    holder.kill()
    holder.wait(10)


def start_in_namespace(
    in_namespace: Callable[..., list[str]], config_path: Path, notify_socket: Any
) -> subprocess.Popen[str]:
    """Start ``edge-gate run`` in the namespace, as systemd would start it."""
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_socket.path))
    env["WATCHDOG_USEC"] = "3000000"
    env.pop("WATCHDOG_PID", None)
    command = [sys.executable, "-X", "faulthandler", "-m", "edge_gate", "run"]
    return subprocess.Popen(
        in_namespace(*command, "--config", str(config_path)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def field_json(arguments: list[str], config_path: Path, capsys: Any) -> Any:
    exit_status = cli_main([*arguments, "--json", "--config", str(config_path)])
    output = capsys.readouterr().out
    assert exit_status in (0, 1), output
    if arguments[0] == "log":
        return [json.loads(line) for line in output.splitlines()]
    return json.loads(output)


def test_crossing_survives_full_disk_restart(
    lane_setup: Any,
    full_state_namespace: Callable[..., list[str]],
    notify_socket: Any,
    capsys: Any,
    stop_daemon: Callable[..., tuple[int, str]],
    wait_until: Callable[..., None],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    spool = spool_of(lane_setup)
    filler = lane_setup.state_dir / "filler"

    daemon = start_in_namespace(full_state_namespace, config_path, notify_socket)
    try:
        notify_socket.wait_for("READY=1", timeout_s=60)
        wait_until(lambda: field_json(["status"], config_path, capsys)["in_service"])
        # Fill the state folder's file system, then let a traveller cross.
        fill = ["sh", "-c", 'cat /dev/zero > "$1"', "sh", str(filler)]
        subprocess.run(full_state_namespace(*fill), capture_output=True, check=False)
        lane_setup.reader.present(lane_setup.mrz_lines())
        wait_until(
            lambda: "audit" in field_json(["status"], config_path, capsys)["holds"],
            timeout_s=30,
        )
    finally:
        exit_status, stderr = stop_daemon(daemon)
    assert exit_status == 0, stderr
    assert "not written before stop, kept in the audit spool" in stderr
    assert DOCUMENT_NUMBER not in stderr
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.folder.stat().st_mode) == 0o700
    (spooled,) = [r for r in spool.read() if r.kind == "transaction"]
    assert spooled.document_number == DOCUMENT_NUMBER

    # Free the space and restart: the crossing reaches the audit log.
    subprocess.run(full_state_namespace("rm", str(filler)), check=True)
    daemon = start_in_namespace(full_state_namespace, config_path, notify_socket)
    try:
        notify_socket.wait_for("READY=1", timeout_s=60)
        rows = field_json(["log", "--show-personal"], config_path, capsys)
        status = field_json(["status"], config_path, capsys)
    finally:
        exit_status, stderr = stop_daemon(daemon)
    assert exit_status == 0, stderr
    (row,) = [r for r in rows if r["kind"] == "transaction"]
    assert row["document_number"] == DOCUMENT_NUMBER
    assert row["time_utc"] == spooled.to_json_dict()["time_utc"]
    assert row["outcome"] == spooled.outcome
    assert "audit" not in status["holds"]
    assert not spool.exists()


def test_full_disk_at_start_named_in_error(
    lane_setup: Any,
    full_state_namespace: Callable[..., list[str]],
    notify_socket: Any,
    stop_daemon: Callable[..., tuple[int, str]],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)
    # A clean stop removes the audit log's -wal and -shm files.
    daemon = start_in_namespace(full_state_namespace, config_path, notify_socket)
    try:
        notify_socket.wait_for("READY=1", timeout_s=60)
    finally:
        exit_status, stderr = stop_daemon(daemon)
    assert exit_status == 0, stderr
    filler = lane_setup.state_dir / "filler"
    fill = ["sh", "-c", 'cat /dev/zero > "$1"', "sh", str(filler)]
    subprocess.run(full_state_namespace(*fill), capture_output=True, check=False)

    daemon = start_in_namespace(full_state_namespace, config_path, notify_socket)
    _output, stderr = daemon.communicate(timeout=60)

    assert daemon.returncode == 1, stderr
    assert f"The file system of {lane_setup.state_dir} is full" in stderr
    assert "Free space on that file system, then restart edge-gate.service" in stderr
    assert "not an audit log" not in stderr


def write_crafted_spool(setup: Any, records: list[dict[str, Any]]) -> AuditSpool:
    """Write a spool as its owner could: any record values, a correct SHA-256."""
    import hashlib

    from edge_gate.store._audit import canonical_json
    from edge_gate.store._spool import SPOOL_FORMAT, SPOOL_VERSION

    config = setup.config()
    body = {
        "format": SPOOL_FORMAT,
        "version": SPOOL_VERSION,
        "written_utc": datetime.datetime.now(datetime.UTC).isoformat(),
        "lane_id": config.daemon.lane_id,
        "state_dir": config.store.state_dir,
        "records": records,
    }
    document = {**body, "sha256": hashlib.sha256(canonical_json(body)).hexdigest()}
    spool = spool_of(setup)
    spool.folder.mkdir(mode=0o700, parents=True)
    spool.path.write_text(json.dumps(document), "utf-8")
    return spool


def spool_record(index: int, **changes: Any) -> dict[str, Any]:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    record = AuditRecord(
        moment + datetime.timedelta(seconds=index),
        "",
        "none",
        f"spooled {index}",
        kind="service",
    )
    return {**record.to_json_dict(), **changes}


def test_spool_huge_number_set_aside(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    spool = write_crafted_spool(
        lane_setup, [spool_record(0), spool_record(1, latency_ms=10**400)]
    )

    running = start_lane(lane_setup)
    wait_until(lambda: "audit_spool" in running.status()["holds"])

    (set_aside_path,) = spool.invalid_files()
    reason = running.status()["holds"]["audit_spool"]
    assert "record 1 is invalid: audit field latency_ms is a whole number" in reason
    assert str(set_aside_path) in reason
    assert running.runner.audit.verify().is_intact


def test_spool_whole_number_replayed_with_intact_chain(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    spool = write_crafted_spool(
        lane_setup,
        [spool_record(0, latency_ms=5), spool_record(1, latency_ms=10**30)],
    )

    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)

    assert not spool.exists()
    replayed = [
        entry.record.latency_ms
        for entry in running.runner.audit.query()
        if entry.record.reason.startswith("spooled")
    ]
    assert replayed == [5.0, 1e30]
    result = running.runner.audit.verify()
    assert result.is_intact, result.problem


def test_unexpected_replay_error_keeps_records_and_starts(
    lane_setup: Any,
    start_lane: Any,
    wait_until: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No real record raises an error outside SQLite's own any more, so the
    # batched append is made to raise one (as SQLite's OverflowError was).
    spool = write_crafted_spool(lane_setup, [spool_record(0), spool_record(1)])

    original = AuditLog.append_many

    def unexpected(self: AuditLog, records: Any) -> Any:
        # append() writes one record through append_many; only the batch fails.
        if len(records) > 1:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return original(self, records)

    monkeypatch.setattr(AuditLog, "append_many", unexpected)
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)

    assert not spool.exists()
    assert [
        entry.record.reason
        for entry in running.runner.audit.query()
        if entry.record.reason.startswith("spooled")
    ] == ["spooled 0", "spooled 1"]
