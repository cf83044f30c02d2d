"""The lane runner on the rig's emulators: real ptys, mock pins, SQLite.

These tests run the runner in-process, as ``edge-gate simulate`` does, and
check what the daemon adds to the lane core: device loss and return without
a restart, audit rows, service holds, manual opening, shutdown.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from edge_gate.daemon._field import MAX_REASON_CHARS
from edge_gate.store import AUDIT_DB_NAME, AuditLog, TrustedClock


def test_start_idle_in_service(lane: Any, wait_until: Callable[..., None]) -> None:
    wait_until(lane.idle_in_service)
    status = lane.status()
    assert status["devices_lost"] == []
    assert status["holds"] == {}
    assert {w["name"] for w in status["workers"]} == {
        "lane",
        "document-reader",
        "fingerprint",
        "iris",
        "watchlist",
        "device-monitor",
        "housekeeping",
    }
    assert "lane lane-1 idle" in lane.runner.status_line()
    # Inputs at their wired levels raise no alarm at start.
    assert [e.record.reason for e in lane.audit() if e.record.kind == "service"] == []


def test_unknown_traveller_rejected_and_audited(
    lane: Any, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    lane.setup.reader.present(lane.setup.mrz_lines())
    wait_until(lambda: any(e.record.kind == "transaction" for e in lane.audit()))
    (entry,) = [e for e in lane.audit() if e.record.kind == "transaction"]
    assert entry.record.outcome == "rejected"
    assert entry.record.document_number == "C4X7M2Q91"
    assert entry.record.issuing_state == "VNM"
    assert entry.record.reason.startswith("not_enrolled")
    assert lane.runner.audit.verify().is_intact
    assert "transaction" in lane.event_types()
    assert lane.status()["counts"] == {"rejected": 1}


def test_reader_unplug_and_return(lane: Any, wait_until: Callable[..., None]) -> None:
    wait_until(lane.idle_in_service)
    lane.setup.reader.unplug()
    wait_until(lambda: lane.status()["devices_lost"] == ["document_reader"])
    assert not lane.status()["in_service"]
    assert "document_reader missing" in lane.runner.status_line()
    wait_until(lambda: lane.status()["message"] == "out_of_service")

    # Back without a restart: the same runner serves the next traveller.
    lane.setup.reader.replug()
    wait_until(lane.idle_in_service)
    lane.setup.reader.present(lane.setup.mrz_lines())
    wait_until(lambda: lane.status()["counts"].get("rejected") == 1)


def test_fingerprint_module_unplug(lane: Any, wait_until: Callable[..., None]) -> None:
    wait_until(lane.idle_in_service)
    lane.setup.fingerprint_module.unplug()
    wait_until(lambda: "fingerprint" in lane.status()["devices_lost"])
    lane.setup.fingerprint_module.replug()
    wait_until(lane.idle_in_service)


def test_stop_aborts_and_records(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    lane_setup.write_templates(enrolled=True)
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    lane_setup.reader.present(lane_setup.mrz_lines())
    # The lane waits for a finger that never comes.
    wait_until(lambda: running.status()["state"] == "fingerprint")
    running.close()
    with AuditLog(lane_setup.state_dir / AUDIT_DB_NAME, read_only=True) as audit:
        entries = [e for e in audit.query() if e.record.kind == "transaction"]
        assert audit.verify().is_intact
    assert len(entries) == 1
    assert entries[0].record.outcome == "aborted"
    assert "turnstile" in entries[0].record.reason


def test_manual_open_recorded(lane: Any, wait_until: Callable[..., None]) -> None:
    wait_until(lane.idle_in_service)
    result = lane.runner.manual_open("  ambulance crew   needs access ")
    (entry,) = [e for e in lane.audit() if e.record.kind == "manual_open"]
    assert result == {"opened": True, "audit_seq": entry.seq}
    assert entry.record.reason == "ambulance crew needs access"
    assert entry.record.outcome == "opened"
    unlock_pin = lane.pins.pin(lane.config.turnstile.unlock_pin)
    assert unlock_pin.state == 1
    assert lane.status()["state"] == "manual_passage"

    # One person walks through; the lane locks and returns to idle.
    lane.walker.walk_through()
    wait_until(lane.idle_in_service)
    assert unlock_pin.state == 0
    alarms = [e for e in lane.audit() if e.record.kind == "service"]
    assert [a.record.alarms for a in alarms if "forced" in a.record.reason] == []


def test_manual_open_during_transaction(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    from edge_gate.errors import ControlError

    lane_setup.write_templates(enrolled=True)
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    lane_setup.reader.present(lane_setup.mrz_lines())
    wait_until(lambda: running.status()["state"] == "fingerprint")
    with pytest.raises(ControlError, match="wait for the transaction to end"):
        running.runner.manual_open("let them through")
    # The refused request is on record, and no row claims an opening.
    rows = [e.record for e in running.audit() if e.record.kind == "manual_open"]
    assert [(r.outcome, r.reason) for r in rows] == [
        ("none", "manual opening refused in state fingerprint: let them through")
    ]


def test_manual_open_needs_reason(lane: Any, wait_until: Callable[..., None]) -> None:
    from edge_gate.errors import ControlError

    wait_until(lane.idle_in_service)
    with pytest.raises(ControlError, match="--reason"):
        lane.runner.manual_open("   ")
    assert [e for e in lane.audit() if e.record.kind == "manual_open"] == []


def test_clock_behind_holds_service(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    TrustedClock(lane_setup.state_dir).record(future)
    running = start_lane(lane_setup)
    wait_until(lambda: "clock" in running.status()["holds"])
    assert not running.status()["in_service"]
    assert "behind the latest trusted time" in running.runner.status_line()
    lane_setup.reader.present(lane_setup.mrz_lines())
    time.sleep(1.0)
    assert [e for e in running.audit() if e.record.kind == "transaction"] == []
    assert running.status()["state"] == "idle"


def test_stale_templates_hold_service(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    lane_setup.write_templates(expires_in=datetime.timedelta(days=-3))
    running = start_lane(lane_setup)
    wait_until(lambda: "templates" in running.status()["holds"])
    assert "offline limit" in running.status()["holds"]["templates"]
    wait_until(lambda: running.status()["message"] == "out_of_service")


def test_field_commands_over_socket(lane: Any, wait_until: Callable[..., None]) -> None:
    from pathlib import Path

    from edge_gate.daemon import ControlServer, request

    wait_until(lane.idle_in_service)
    path = Path(lane.config.daemon.control_socket)
    control = ControlServer(path, lane.runner.control_handlers(), lane.runner.events)
    control.start()
    try:
        assert request(path, {"command": "status"})["state"] == "idle"
        devices = request(path, {"command": "devices"})
        assert all(d["present"] for d in devices.values())
        results = request(path, {"command": "selftest"})
        checks = {r["check"]: r for r in results}
        assert checks["audit_log"]["ok"]
        assert checks["fingerprint_model"]["ok"], checks["fingerprint_model"]
        assert checks["iris_model"]["ok"], checks["iris_model"]
        assert checks["gpio_inputs"]["ok"], checks["gpio_inputs"]
        assert checks["templates"]["ok"], checks["templates"]
        assert checks["clock"]["ok"], checks["clock"]
        assert checks["document_reader"]["ok"], checks["document_reader"]
        assert "relay" not in checks
        relay = {
            r["check"]: r for r in request(path, {"command": "selftest", "relay": True})
        }
        assert relay["relay"]["ok"], relay["relay"]
        wait_until(lane.idle_in_service, timeout_s=20)
        request(path, {"command": "open", "reason": "test"})
        rows = request(path, {"command": "log", "outcome": "opened"})
        assert [r["reason"] for r in rows] == ["self-test: relay pulse", "test"]
        assert request(path, {"command": "log_verify"})["intact"]
    finally:
        control.stop()


def fill_disk(monkeypatch: Any, audit: Any) -> threading.Event:
    """Make ``audit.append`` fail as on a full disk until the event is cleared.

    The disk stays full until the test frees it, because the housekeeping
    worker retries every second.
    """
    from edge_gate.errors import StoreError

    real_append = audit.append
    disk_full = threading.Event()
    disk_full.set()

    def failing_append(record: Any) -> Any:
        if disk_full.is_set():
            raise StoreError("database or disk is full")
        return real_append(record)

    monkeypatch.setattr(audit, "append", failing_append)
    return disk_full


def test_audit_failure_holds_then_recovers(
    lane: Any, monkeypatch: Any, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    disk_full = fill_disk(monkeypatch, lane.runner.audit)
    lane.setup.reader.present(lane.setup.mrz_lines())
    wait_until(lambda: "audit" in lane.status()["holds"])
    assert not lane.status()["in_service"]

    # Housekeeping retries; the kept record lands and service resumes.
    disk_full.clear()
    lane.runner.housekeeping()
    rows = [e for e in lane.audit() if e.record.kind == "transaction"]
    assert [e.record.outcome for e in rows] == ["rejected"]
    assert "audit" not in lane.status()["holds"]


@pytest.mark.parametrize("disk_freed", [True, False])
def test_stop_retries_unwritten_audit(
    lane_setup: Any,
    start_lane: Any,
    monkeypatch: Any,
    caplog: Any,
    wait_until: Callable[..., None],
    disk_freed: bool,
) -> None:
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    disk_full = fill_disk(monkeypatch, running.runner.audit)
    lane_setup.reader.present(lane_setup.mrz_lines())
    wait_until(lambda: "audit" in running.status()["holds"])
    if disk_freed:
        disk_full.clear()
    with caplog.at_level(logging.ERROR, logger="edge_gate.daemon._runner"):
        running.runner.stop()
    lost = [r for r in caplog.records if "not written before stop" in r.getMessage()]
    if disk_freed:
        # The stop's last try writes the kept record.
        assert lost == []
        reread = AuditLog(lane_setup.state_dir / AUDIT_DB_NAME, read_only=True)
        try:
            kinds = [e.record.kind for e in reread.query()]
        finally:
            reread.close()
        assert "transaction" in kinds
    else:
        assert len(lost) == 1
        assert "outcome rejected" in lost[0].getMessage()
        assert "C4X7M2Q91" not in lost[0].getMessage()


def test_template_update_reloads_watchlist(
    lane: Any, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    assert lane.status()["templates"]["version"] == 1
    lane.setup.write_templates()
    lane.runner.housekeeping()
    wait_until(lambda: lane.status()["templates"]["watchlist_version"] == 2)
    wait_until(lambda: "watchlist" not in lane.status()["holds"])
    templates = lane.status()["templates"]
    assert templates["version"] == 2
    assert templates["watchlist_version"] == 2
    assert templates["watchlist_sizes"] == {"fingerprint": 0, "iris": 0}


def test_sensor_unplug_during_capture(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    lane_setup.write_templates(enrolled=True)
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    lane_setup.reader.present(lane_setup.mrz_lines())
    wait_until(lambda: running.status()["state"] == "fingerprint")
    lane_setup.fingerprint_module.unplug()
    wait_until(lambda: "fingerprint" in running.status()["devices_lost"])
    wait_until(lambda: bool(running.audit()))

    # The driver reported the loss; reopening must clear it with no capture.
    lane_setup.fingerprint_module.replug()
    wait_until(running.idle_in_service, timeout_s=15)
    rows = [e for e in running.audit() if e.record.kind == "transaction"]
    assert [e.record.outcome for e in rows] == ["aborted"]
    devices = running.runner.devices()
    assert devices["fingerprint"]["present"]
    assert devices["fingerprint"]["lost_by"] == []


def test_unplug_drops_late_capture_quietly(
    lane_setup: Any,
    start_lane: Any,
    caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., None],
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_gate")
    lane_setup.write_templates(enrolled=True)
    running = start_lane(lane_setup)
    module = lane_setup.fingerprint_module
    wait_until(running.idle_in_service)
    lane_setup.reader.present(lane_setup.mrz_lines())
    wait_until(lambda: running.status()["state"] == "fingerprint")
    # The worker polls the module for a finger while its capture runs.
    seen = len(module.events)
    wait_until(lambda: any(e.kind == "command" for e in module.events[seen:]))
    module.unplug()

    # The capture fails after the lane aborted its transaction. The worker
    # drops the outcome if the cancel reached it first, and otherwise the
    # lane rejects it as a late result. Both log at DEBUG.
    def late_outcomes() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "CaptureFailed" in r.getMessage()]

    def aborted() -> list[str]:
        rows = [e for e in running.audit() if e.record.kind == "transaction"]
        return [e.record.reason for e in rows]

    wait_until(lambda: bool(late_outcomes()) and bool(aborted()))
    assert aborted() == ["fingerprint_lost"]
    assert [r.levelname for r in late_outcomes()] == ["DEBUG"]
    rejections = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert [r for r in rejections if r.levelno > logging.DEBUG] == []


def test_watchlist_reload_failure_holds(
    lane: Any, monkeypatch: Any, wait_until: Callable[..., None]
) -> None:
    from edge_gate.daemon import _runner
    from edge_gate.errors import TemplateError

    wait_until(lane.idle_in_service)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise TemplateError("watchlist template 7 is corrupt")

    monkeypatch.setattr(_runner, "build_matchers", broken)
    lane.setup.write_templates()
    lane.runner.housekeeping()
    wait_until(lambda: "corrupt" in lane.status()["holds"].get("watchlist", ""))
    assert not lane.status()["in_service"]
    assert lane.status()["templates"]["watchlist_version"] == 1


def raw_request(path: Any, line: bytes) -> dict[str, Any]:
    """Send one raw request line over the real socket; return the reply."""
    import json
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(line + b"\n")
        reply = b""
        while b"\n" not in reply:
            chunk = client.recv(65536)
            assert chunk, f"no reply; got {reply!r}"
            reply += chunk
    message: dict[str, Any] = json.loads(reply.split(b"\n", 1)[0])
    return message


@pytest.fixture
def control(lane: Any) -> Any:
    from pathlib import Path

    from edge_gate.daemon import ControlServer

    path = Path(lane.config.daemon.control_socket)
    server = ControlServer(path, lane.runner.control_handlers(), lane.runner.events)
    server.start()
    yield path
    server.stop()


def test_concurrent_opens_report_one_opening(
    lane: Any, control: Any, wait_until: Callable[..., None]
) -> None:
    import threading

    from edge_gate.daemon import request
    from edge_gate.errors import ControlError

    wait_until(lane.idle_in_service)
    results: list[Any] = []
    gate = threading.Barrier(6)

    def open_once(index: int) -> None:
        gate.wait()
        try:
            results.append(
                request(control, {"command": "open", "reason": f"crew {index}"})
            )
        except ControlError as err:
            results.append(str(err))

    threads = [threading.Thread(target=open_once, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    opened = [r for r in results if isinstance(r, dict)]
    assert len(results) == 6
    assert len(opened) == 1, results
    assert all("manual_passage" in r for r in results if isinstance(r, str))
    rows = [e.record for e in lane.audit() if e.record.kind == "manual_open"]
    assert [r.outcome for r in rows].count("opened") == 1
    assert [r.outcome for r in rows].count("none") == 5
    assert all(r.reason.startswith("manual opening refused") for r in rows[1:])
    assert lane.status()["state"] == "manual_passage"


@pytest.mark.parametrize(
    ("line", "named"),
    [
        (b'{"command": "open", "reason": null}', "reason None is not usable"),
        (b'{"command": "open", "reason": {"a": 1}}', "is not usable"),
        (b'{"command": "open", "reason": "   "}', "is not usable"),
        (
            b'{"command": "open", "reason": "' + b"x" * (MAX_REASON_CHARS + 1) + b'"}',
            f"at most {MAX_REASON_CHARS}",
        ),
    ],
)
def test_open_refuses_unusable_reason(
    lane: Any, control: Any, line: bytes, named: str, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    reply = raw_request(control, line)
    assert reply["ok"] is False
    assert named in reply["error"]
    assert [e for e in lane.audit() if e.record.kind == "manual_open"] == []
    assert lane.status()["state"] == "idle"


@pytest.mark.parametrize(
    ("line", "named"),
    [
        (b'{"command": "log", "limit": 1e309}', "limit inf is not a whole number"),
        (b'{"command": "log", "limit": "5"}', "is not a whole number"),
        (b'{"command": "log", "limit": 0}', "limit 0 is out of range"),
        (b'{"command": "log", "outcome": ["x"]}', "outcome ['x'] is not a filter"),
        (b'{"command": "log", "since": 5}', "since 5 is not an ISO 8601 time"),
    ],
)
def test_log_checks_filter_types(
    lane: Any, control: Any, line: bytes, named: str, caplog: Any
) -> None:
    reply = raw_request(control, line)
    assert reply["ok"] is False
    assert named in reply["error"]
    assert "sqlite" not in reply["error"].lower()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_status_after_stop(lane: Any, wait_until: Callable[..., None]) -> None:
    wait_until(lane.idle_in_service)
    lane.close()
    status = lane.runner.status()
    assert status["state"] == "stopped"
    assert status["in_service"] is False
    assert "templates" not in status


def test_manual_open_surrogate_reason_refused(
    lane: Any, wait_until: Callable[..., None]
) -> None:
    from edge_gate.errors import ControlError

    wait_until(lane.idle_in_service)
    with pytest.raises(ControlError, match="give the reason as plain text"):
        lane.runner.manual_open("crew x\ud800")
    assert lane.status()["state"] == "idle"
    # The log stays writable: a proper opening after it is recorded.
    assert lane.runner.manual_open("ambulance crew")["opened"]


def test_invalid_record_written_sanitized(
    lane: Any, wait_until: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    from edge_gate.store import AuditRecord

    wait_until(lane.idle_in_service)
    now = datetime.datetime.now(datetime.UTC)
    lane.runner._append_audit(
        AuditRecord(now, "tx-\ud800", "rejected", "reason \udcff", lane_id="lane-1")
    )
    lane.runner._append_audit(AuditRecord(now, "tx-2", "rejected", "after it"))

    rows = [e.record for e in lane.audit() if e.record.kind == "transaction"]
    assert [(r.transaction_id, r.reason) for r in rows] == [
        ("tx-\\ud800", "reason \\udcff"),
        ("tx-2", "after it"),
    ]
    assert "audit" not in lane.status()["holds"]
    assert any("is invalid" in r.getMessage() for r in caplog.records)


def test_longest_reason_kept_whole_in_opening_and_refusal(
    lane: Any, control: Any, wait_until: Callable[..., None]
) -> None:
    from edge_gate.daemon import request
    from edge_gate.errors import ControlError

    wait_until(lane.idle_in_service)
    first = "a" * (MAX_REASON_CHARS - 10) + "END-MARKER"
    second = "b" * (MAX_REASON_CHARS - 10) + "END-MARKER"
    assert request(control, {"command": "open", "reason": first})["opened"]
    # manual_passage is the longest state name, so the longest refusal prefix.
    with pytest.raises(ControlError, match="manual_passage"):
        request(control, {"command": "open", "reason": second})
    rows = [e.record for e in lane.audit() if e.record.kind == "manual_open"]
    assert [(r.outcome, r.reason) for r in rows] == [
        ("opened", first),
        ("none", f"manual opening refused in state manual_passage: {second}"),
    ]
    # One character more is refused before any row is written.
    with pytest.raises(ControlError, match=f"at most {MAX_REASON_CHARS}"):
        request(control, {"command": "open", "reason": second + "x"})
    assert len([e for e in lane.audit() if e.record.kind == "manual_open"]) == 2
